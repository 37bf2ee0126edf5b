"""Parse a review into one schema, whatever the model wrote.

SEA-style markdown (``**Summary:**`` ... ``**Paper Decision:**``) and JSON (bare,
in a code fence, or followed by prose) both become::

    summary, strengths[], weaknesses[], questions[], soundness, presentation,
    contribution (1-4), rating (1-10), confidence (1-5 or None), decision

Values out of range and missing fields are reported in ``issues``, never invented.
A review is usable (``ok``) when it has a summary and a rating.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

RANGES = {"soundness": (1, 4), "presentation": (1, 4), "contribution": (1, 4), "rating": (1, 10), "confidence": (1, 5)}
LISTS = ("strengths", "weaknesses", "questions")
REQUIRED = ("summary", "rating")


@dataclass
class ParsedReview:
    summary: str | None = None
    strengths: list[str] = field(default_factory=list)
    weaknesses: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    soundness: int | None = None
    presentation: int | None = None
    contribution: int | None = None
    rating: int | None = None
    confidence: int | None = None
    decision: str | None = None
    issues: list[str] = field(default_factory=list)
    format: str = "none"

    @property
    def ok(self) -> bool:
        return all(getattr(self, k) not in (None, "") for k in REQUIRED)

    def fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("summary", "strengths", "weaknesses", "questions", "soundness",
                                              "presentation", "contribution", "rating", "confidence", "decision")}


def _first_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str):
        m = re.search(r"-?\d+", v)
        return int(m.group(0)) if m else None
    return None


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x).strip() for x in v if str(x).strip()]
    return _bullets(str(v))


def _bullets(text: str) -> list[str]:
    items = []
    for ln in text.splitlines():
        ln = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", ln).strip()
        if ln:
            items.append(ln)
    return items


def _decision(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v)
    m = re.search(r"\b(accept|reject)", s, re.I)
    return m.group(1).capitalize() if m else None


def _set_scores(r: ParsedReview, raw: dict[str, Any]) -> None:
    for k, (lo, hi) in RANGES.items():
        if k not in raw or raw[k] in (None, ""):
            continue
        n = _first_int(raw[k])
        if n is None:
            r.issues.append(f"{k}: not a number ({str(raw[k])[:40]!r})")
        elif not lo <= n <= hi:
            r.issues.append(f"{k}: {n} out of range {lo}-{hi}")
        else:
            setattr(r, k, n)


def _finish(r: ParsedReview) -> ParsedReview:
    for k in REQUIRED:
        if getattr(r, k) in (None, ""):
            r.issues.append(f"{k}: missing")
    return r


def _json_candidates(text: str) -> list[str]:
    out = [m.group(1) for m in re.finditer(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)]
    start = text.find("{")
    if start != -1:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            c = text[i]
            if in_str:
                esc = (c == "\\") and not esc
                if c == '"' and not esc:
                    in_str = False
                continue
            if c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    out.append(text[start:i + 1])
                    break
    return out


def parse_json_review(text: str) -> ParsedReview | None:
    for cand in _json_candidates(text):
        try:
            raw = json.loads(cand, strict=False)  # raw newlines inside strings are common
        except json.JSONDecodeError:
            continue
        if not isinstance(raw, dict):
            continue
        raw = {k.lower().strip(): v for k, v in raw.items()}
        if "overall" in raw and "rating" not in raw:
            raw["rating"] = raw["overall"]
        r = ParsedReview(format="json")
        s = raw.get("summary")
        r.summary = str(s).strip() if s not in (None, "") else None
        for k in LISTS:
            setattr(r, k, _as_list(raw.get(k)))
        _set_scores(r, raw)
        r.decision = _decision(raw.get("decision"))
        return _finish(r)
    return None


_SEA_HEAD = re.compile(r"^\s*(?:#+\s*)?\*\*\s*([A-Za-z ]+?)\s*:?\s*\*\*\s*:?\s*(.*)$", re.M)


def parse_sea_review(text: str) -> ParsedReview | None:
    heads = list(_SEA_HEAD.finditer(text))
    if not heads:
        return None
    sections: dict[str, str] = {}
    for m, nxt in zip(heads, heads[1:] + [None]):
        body = (m.group(2) + "\n" + text[m.end():nxt.start() if nxt else len(text)]).strip()
        sections[m.group(1).strip().lower()] = body
    r = ParsedReview(format="sea")
    r.summary = sections.get("summary") or None
    for k in LISTS:
        setattr(r, k, _bullets(sections.get(k, "")))
    _set_scores(r, sections)
    dec = sections.get("paper decision") or sections.get("decision")
    if dec:
        m = re.search(r"Decision\s*:\s*(\w+)", dec, re.I)
        r.decision = _decision(m.group(1) if m else dec)
    return _finish(r)


def parse_review(text: str) -> ParsedReview:
    """Try JSON, then SEA markdown; the better-filled parse wins."""
    cands = [p for p in (parse_json_review(text), parse_sea_review(text)) if p is not None]
    if not cands:
        return ParsedReview(issues=["no review found (neither JSON nor SEA markdown sections)"])
    return max(cands, key=lambda p: (p.ok, -len(p.issues)))
