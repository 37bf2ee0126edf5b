"""Where the references, the abstracts inside them and the appendices are.

Works on markdown (ours from PDF ingest, or the user's). Headings come in many
shapes in ML papers: ``## References``, ``**REFERENCES**``, ``7 References``,
letter-spaced small caps ``R EFERENCES``, or the word glued to a paragraph by
extraction. Appendices start with ``Appendix``/``Supplementary``/``Supplemental
Material`` or a lettered heading (``A Implementation Details``, ``A. Title``, or
``A`` alone on its line with the title on the next). Journal styles write ``A. Title`` in
sentence case or with commas (``A. Datasets, metrics and baselines``): such a line is a heading
when it reads like no reference entry (no initials before a surname, no cited year, no final
period) and is marked up (``#``, ``**``) or followed by ``B. Title`` or ``A.1 Title``.
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
# "## A", "## A Title", "A. Title", "**A.** Title", "**A. Title**" - the first appendix is A.
APPX_LETTER = re.compile(
    r"^[ \t]*(?P<hashes>#{1,6}[ \t]*)?(?P<bold>\*\*|__)?A(?P<p1>[.:])?(?:\*\*|__)?(?P<p2>[.:])?"
    r"(?:[ \t]+(?P<title>[^\n]{1,150}?))?[ \t]*(?:\*\*|__)?[ \t]*$", re.M)
# the next heading of a journal-style appendix: "B. Title" or "A.1. Title"
_SIBLING = re.compile(r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?(?:B\.|A\.1\.?)(?:\*\*|__)?[ \t]+(?P<title>[^\n]{1,150}?)"
                      r"[ \t]*(?:\*\*|__)?[ \t]*$", re.M)
# what a reference entry has and a heading has not: initials before a surname, a cited year, "et al."
_INITIALS = re.compile(r"(?:^|[\s,(&])(?:[A-Z]\.[ \t]?){1,3}[A-Z][a-z\u00c0-\u024f'’-]+")
_CITED = re.compile(r"\b(?:19|20)\d\d[a-z]?\)?[.,;:]|\bet al\b|\bIn:? Proc|\bpp\.|\bvol\.|[.,;:-]$|\.\s")
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


def _is_citation(title: str) -> bool:
    return bool(_INITIALS.search(title) or _CITED.search(title))


def _journal_heading(text: str, end: int, title: str, marked: bool) -> bool:
    """``A. Title`` as journal styles write it, in sentence case or with commas: a heading when it reads
    like no reference entry and is marked up, or a ``B. Title`` / ``A.1 Title`` heading follows it."""
    if _is_citation(title) or len(title.split()) > 20 or not title[:1].isupper():
        return False
    if marked:
        return True
    return any(not _is_citation(t) and t[:1].isupper()
               for t in (m.group("title").strip("*_ ") for m in _SIBLING.finditer(text, end)))


def _letter_heading(text: str, m: re.Match[str]) -> bool:
    marked = bool(m.group("hashes") or m.group("bold"))
    title = m.group("title")
    if title is None:  # "A" alone on its line: the title must follow on the next non-empty line
        nxt = text[m.end():m.end() + 200].lstrip("\n").split("\n", 1)[0]
        nxt = re.sub(r"^#{1,6}\s*", "", nxt)
        return marked and _looks_like_title(nxt) and not re.match(r"^A\.\d", nxt)
    title = title.strip().strip("*_").strip()
    if _looks_like_title(title) and (marked or len(title.split()) <= 10):
        return True
    return "." in (m.group("p1"), m.group("p2")) and _journal_heading(text, m.end(), title, marked)


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
    letter = next((m for m in APPX_LETTER.finditer(text, start) if _letter_heading(text, m)), None)
    if letter is not None:
        cands.append(letter.start())
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
