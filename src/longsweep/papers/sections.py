"""Where the references, the abstracts inside them and the appendices are.

Works on markdown (ours from PDF ingest, or the user's). Headings come in many
shapes in ML papers: ``## References``, ``**REFERENCES**``, ``7 References``,
letter-spaced small caps ``R EFERENCES``, or the word glued to a paragraph by
extraction. Appendices start with ``Appendix``/``Supplementary``/``Supplemental
Material`` or a lettered heading (``A Implementation Details``, ``A. Title``, or
``A`` alone on its line with the title on the next).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SP = r"\s?"
_REF_WORD = (
    r"(?:R" + _SP + "E" + _SP + "F" + _SP + "E" + _SP + "R" + _SP + "E" + _SP + "N" + _SP + "C" + _SP + "E" + _SP + "S"
    r"|References|Bibliography|BIBLIOGRAPHY|Literature\s+Cited|LITERATURE\s+CITED|Works\s+Cited)"
)
_HEAD_PREFIX = r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*(?:(?:\d{1,2}|[IVX]{1,5})\.?[ \t]+)?"
REF_HEADING = re.compile(_HEAD_PREFIX + _REF_WORD + r"[ \t]*(?:\*\*|__)?[ \t:]*$", re.M)
REF_INLINE = re.compile(r"\b(?:References|REFERENCES|Bibliography)\b")

_APPX_WORDS = (r"(?:Appendix|APPENDIX|Appendices|APPENDICES|Supplementary|SUPPLEMENTARY|Supplemental|SUPPLEMENTAL"
               r"|Technical\s+Appendix)")
APPX_WORD_HEADING = re.compile(_HEAD_PREFIX + _APPX_WORDS + r"\b[^\n]{0,80}$", re.M)
# "## A", "## A Title", "A. Title", "**A** Title" - the first appendix is A.
APPX_LETTER = re.compile(r"^[ \t]*(#{1,6}[ \t]*)?(?:\*\*)?A(?:\*\*)?(?:\.|:)?(?:[ \t]+([^\n]{1,90}))?[ \t]*$", re.M)
ABSTRACT_MARK = re.compile(r"(?:\*\*|__)?Abstract(?:\*\*|__)?\s*:(?:\*\*|__)?", re.I)
_YEAR = re.compile(r"\b(19|20)\d\d\b")


@dataclass
class Sections:
    """Character offsets into the markdown; ``None`` where a part is absent."""

    references: int | None = None
    appendix: int | None = None
    end: int = 0
    ref_abstracts: list[tuple[int, int]] = field(default_factory=list)

    @property
    def refs_end(self) -> int:
        return self.appendix if self.appendix is not None else self.end


def find_references(text: str) -> int | None:
    """Offset of the References heading: the last line-anchored heading, else the last
    inline occurrence past half the document (extraction glued it to a paragraph)."""
    heads = [m.start() for m in REF_HEADING.finditer(text)]
    if heads:
        return heads[-1]
    half = len(text) // 2
    inline = [m.start() for m in REF_INLINE.finditer(text) if m.start() > half]
    return inline[-1] if inline else None


def _looks_like_title(s: str) -> bool:
    """A heading title, not an author list or a citation."""
    s = s.strip().strip("*").strip()
    if not s or "," in s or _YEAR.search(s) or len(s) > 90:
        return False
    words = [w for w in re.split(r"\s+", s) if w[:1].isalpha()]
    if not words:
        return False
    caps = sum(w[0].isupper() for w in words)
    return s.isupper() or caps >= max(1, len(words) * 0.5)


def find_appendix(text: str, refs: int | None) -> int | None:
    """Offset of the first appendix heading after the references (None: the paper ends there)."""
    if refs is None:
        return None
    start = refs + 1
    nl = text.find("\n", refs)
    if nl != -1:
        start = nl + 1
    cands = []
    m = APPX_WORD_HEADING.search(text, start)
    if m:
        cands.append(m.start())
    for m in APPX_LETTER.finditer(text, start):
        marked, title = m.group(1), m.group(2)
        if title is not None:
            ok = _looks_like_title(title) and (marked is not None or len(title.split()) <= 10)
        else:  # "A" alone on its line: the title must follow on the next non-empty line
            nxt = text[m.end():m.end() + 200].lstrip("\n").split("\n", 1)[0]
            nxt = re.sub(r"^#{1,6}\s*", "", nxt)
            ok = marked is not None and _looks_like_title(nxt) and not re.match(r"^A\.\d", nxt)
        if ok:
            cands.append(m.start())
            break
    return min(cands) if cands else None


def find_ref_abstracts(text: str, refs: int, refs_end: int) -> list[tuple[int, int]]:
    """Spans of abstracts inside reference entries: from an ``Abstract:`` marker to the
    end of its paragraph (the citation before the marker is kept)."""
    spans = []
    for m in ABSTRACT_MARK.finditer(text, refs, refs_end):
        end = text.find("\n\n", m.end(), refs_end)
        end = refs_end if end == -1 else end
        spans.append((m.start(), end))
    return spans


def find_sections(text: str) -> Sections:
    refs = find_references(text)
    appx = find_appendix(text, refs)
    s = Sections(references=refs, appendix=appx, end=len(text))
    if refs is not None:
        s.ref_abstracts = find_ref_abstracts(text, refs, s.refs_end)
    return s
