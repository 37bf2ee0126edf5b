"""Reading parts of a model's answer: bullet lists, scores, decisions, sections, JSON.

All helpers take text that may be cut off by ``max_tokens`` and never invent a value:
what cannot be read is None, and the caller names it in the review's issues.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Iterator

EOS = re.compile(r"(?:\s*(?:</s>|<\|eot_id\|>|<\|im_end\|>|<\|endoftext\|>|<\|end_of_text\|>|<eos>))+\s*$")
_MARKER = re.compile(r"^(?:[-*•+]|\d{1,2}[.)]|\(\d{1,2}\))\s+")
_LABELS_1_4 = {"poor": 1, "fair": 2, "good": 3, "excellent": 4}
_NUMBER = re.compile(r"^[\s*_#>`\[(•-]*(\d+(?:\.\d+)?)(?![\d.]\d)")


def strip_eos(text: str) -> str:
    """The answer without end-of-sequence tokens that a raw decode leaves at its end."""
    return EOS.sub("", text or "")


def bullets(text: str | None) -> list[str]:
    """Items of a bullet or numbered list; a line without a marker continues the item above it,
    or after a blank line starts a new item (a paragraph)."""
    items: list[str] = []
    joinable = False
    for line in (text or "").splitlines():
        s = line.strip()
        if not s:
            joinable = False
            continue
        m = _MARKER.match(s)
        if m:
            items.append(s[m.end():].strip())
        elif joinable and items:
            items[-1] = f"{items[-1]} {s}"
        else:
            items.append(s)
        joinable = True
    return [i for i in items if i]


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return bullets(str(value))


def score(value: Any, name: str, lo: int, hi: int, issues: list[str]) -> int | None:
    """An integer score in [lo, hi]: a number (``3``), a leading number with a label (``3 good``,
    ``6: marginally above ...``), or for 1-4 scales a label alone (``good``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        issues.append(f"{name}: not a number ({value!r})")
        return None
    if isinstance(value, (int, float)):
        num: float | None = float(value)
    else:
        s = str(value).strip()
        m = _NUMBER.match(s)
        num = float(m.group(1)) if m else None
        if num is None and (lo, hi) == (1, 4):
            lab = re.match(r"^[\W_]*([a-z]+)", s.lower())
            num = _LABELS_1_4.get(lab.group(1)) if lab else None
        if num is None:
            issues.append(f"{name}: no score in {s[:40]!r}")
            return None
    if not math.isfinite(num) or num != int(num):
        issues.append(f"{name}: {num:g} is not an integer")
        return None
    if not lo <= num <= hi:
        issues.append(f"{name}: {int(num)} out of range {lo}-{hi}")
        return None
    return int(num)


DECISION_LINE = re.compile(r"\bdecision\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(accept|reject)", re.I)
_DECISION_LEAD = re.compile(r"^[\W_]*(accept|reject)", re.I)


def decision(text: Any) -> str | None:
    """``Accept`` or ``Reject`` from ``- Decision: Accept``, ``Accept (poster)``, ``reject``."""
    if text is None:
        return None
    s = str(text)
    m = DECISION_LINE.search(s) or _DECISION_LEAD.match(s)
    return m.group(1).capitalize() if m else None


def split_sections(text: str, heading: re.Pattern[str],
                   canon: Callable[[str], str]) -> tuple[dict[str, str], list[str]]:
    """Sections of ``text`` keyed by canonical name, and the names seen more than once.

    ``heading`` has groups ``hashes``, ``bold``, ``name``, ``colon`` and ``rest``; a line is a heading
    when it has markup, a colon after the name, or nothing else. ``canon`` maps a spelling (lower
    case, single spaces) to its canonical name. A section seen twice keeps its first body (models
    that loop repeat their last sections)."""
    heads = []
    for m in heading.finditer(text):
        if m.group("hashes") or m.group("bold") or m.group("colon") or not m.group("rest").strip():
            heads.append(m)
    out: dict[str, str] = {}
    repeated = []
    for m, nxt in zip(heads, heads[1:] + [None]):
        key = canon(re.sub(r"\s+", " ", m.group("name").strip().lower()))
        body = (m.group("rest") + "\n" + text[m.end():nxt.start() if nxt else len(text)]).strip()
        if key in out:
            repeated.append(key)
            continue
        out[key] = body.strip("*_ \n")
    return out, sorted(set(repeated))


def _scan(s: str) -> tuple[int | None, list[str], bool, bool, int | None]:
    """Scan JSON text from its first ``{``: (end of the balanced object or None, open closers,
    inside a string, pending escape, offset of the last comma at depth one)."""
    stack: list[str] = []
    in_str = esc = False
    last_comma = None
    for i, c in enumerate(s):
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
        elif c in "}]":
            if stack:
                stack.pop()
            if not stack:
                return i + 1, [], False, False, last_comma
        elif c == "," and len(stack) == 1:
            last_comma = i
    return None, stack, in_str, esc, last_comma


def _loads(s: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(s, strict=False)  # raw newlines inside strings are common
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _close(s: str, stack: list[str], in_str: bool, esc: bool, last_comma: int | None) -> Iterator[str]:
    """Candidates that close an object cut off mid-way: keep the partial last value, else drop it."""
    tail = s[:-1] if esc else s
    tail = tail + '"' if in_str else tail.rstrip()
    tail = re.sub(r",\s*$", "", tail)
    # a number or literal at the very end may itself be cut (``"rating": 1`` of a 10)
    if in_str or not re.search(r"[\d\w]$", tail):
        yield tail + "".join(reversed(stack))
    if last_comma is not None:
        yield s[:last_comma] + "}"


def json_object(text: str) -> tuple[dict[str, Any] | None, bool]:
    """The first JSON object in ``text`` (bare, in a code fence, followed by prose) and whether it was
    cut off and closed here. Keys are lower-cased and stripped."""
    whole = [m.group(1) for m in re.finditer(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)]
    closing: list[str] = []
    start = text.find("{")
    if start != -1:
        s = text[start:]
        end = _scan(s)[0]
        if end is not None:
            whole.append(s[:end])
        else:
            s = re.sub(r"\s*```\s*$", "", s)
            closing = list(_close(s, *_scan(s)[1:]))
    for closed, cands in ((False, whole), (True, closing)):
        for c in cands:
            obj = _loads(c)
            if obj is not None:
                return {str(k).lower().strip(): v for k, v in obj.items()}, closed
    return None, False


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    s = value if isinstance(value, str) else "\n".join(map(str, value)) if isinstance(value, list) else str(value)
    s = s.strip()
    return s or None
