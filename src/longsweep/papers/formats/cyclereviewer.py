"""``cyclereviewer``: CycleReviewer's layout (WestlakeNLP/CycleReviewer-ML-*): four reviewers, a meta review,
a paper decision, in one answer::

    ## Reviewer
    ### Summary / ### Soundness / ### Presentation / ### Contribution   ("3 good")
    ### Strengths / ### Weaknesses / ### Questions                      (lists or paragraphs)
    ### Flag For Ethics Review                                          ("No ethics review needed.")
    ### Rating          ("6: marginally above the acceptance threshold")
    ### Confidence      ("3: You are fairly confident ...")
    **********
    ... three more reviewers ...
    ## Meta Review
    text
    ### justification_for_why_not_higher_score / ### justification_for_why_not_lower_score
    **********
    ## Paper Decision
    Accept (poster)

The smaller checkpoints write the reviewers' fields as ``## Summary`` without ``## Reviewer``;
both are read. ``reviewers()`` gives one row per reviewer (REVIEWER_FIELDS). The review's own
columns then hold: ``summary`` the first reviewer's summary; ``strengths``/``weaknesses``/
``questions`` every reviewer's items in order; ``soundness``/``presentation``/``contribution``/
``rating``/``confidence`` the mean over the reviewers that gave one, rounded half up
(``rating_mean`` keeps the exact mean); ``ethics_flag`` true if any reviewer flagged the paper;
``decision`` the answer's own Paper Decision (never derived from the scores). An answer cut off
keeps the reviewers it completed; usable when one reviewer has a summary and a rating.
"""

from __future__ import annotations

import math
import re
from typing import Any

from longsweep.papers.formats import text as t
from longsweep.papers.formats.base import RANGES, REVIEWER_FIELDS, ParsedReview, ReviewFormat, register

N_REVIEWERS = 4
INSTRUCTION = (
    "You are an expert academic reviewer who gives research papers a thorough and balanced evaluation. "
    "For the paper below, write the opinions of four different reviewers. Each reviewer covers:\n"
    "1. Summary: the main points and objectives.\n"
    "2. Soundness: the methodology and its logical consistency (1 poor, 2 fair, 3 good, 4 excellent).\n"
    "3. Presentation: clarity, organisation and figures (same scale).\n"
    "4. Contribution: significance and novelty (same scale).\n"
    "5. Strengths, 6. Weaknesses, 7. Questions for the authors.\n"
    "8. Flag For Ethics Review: whether the paper needs one.\n"
    "9. Rating: 1 to 10 with its description, and Confidence: 1 to 5 with its description.\n"
    "Start each reviewer with '## Reviewer', give each item a '### ' heading, and end each reviewer with a "
    "line of ten asterisks. Then write '## Meta Review' with the overall assessment and a recommendation, "
    "its '### justification_for_why_not_higher_score' and '### justification_for_why_not_lower_score', "
    "a line of ten asterisks, and '## Paper Decision' followed by Accept or Reject.\n"
    "Be objective and support every point with specific examples from the paper."
)

_SEP = re.compile(r"^[ \t]*\*{5,}[ \t]*$", re.M)
_TOP = re.compile(r"^##(?!#)[ \t]*(?P<kind>reviewer\b[^\n]*|meta[ \t]*review|paper[ \t]+decision)[ \t]*:?[ \t]*$",
                  re.M | re.I)
_FIELD_NAMES = r"summary|soundness|presentation|contribution|strengths?|weakness(?:es)?|questions?|" \
               r"flag[ \t]+for[ \t]+ethics[ \t]+review|rating|confidence"
FIELD = re.compile(
    r"^[ \t]*(?P<hashes>#{1,6}[ \t]*)?(?P<bold>\*\*|__)?[ \t]*(?P<name>" + _FIELD_NAMES + r")[ \t]*(?P<colon>:)?"
    r"[ \t]*(?:\*\*|__)?[ \t]*:?[ \t]*(?P<rest>[^\n]*)$", re.M | re.I)
_JUSTIFY = re.compile(r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*justification[ _]for[ _]why[ _]not[ _]"
                      r"(?P<which>higher|lower)[ _]score[ \t]*:?[ \t]*(?:\*\*|__)?[ \t]*:?[ \t]*$", re.M | re.I)
SCORES = ("soundness", "presentation", "contribution", "rating", "confidence")
REVIEWER_NAMES = tuple(n for n, _ in REVIEWER_FIELDS)


def _canon(name: str) -> str:
    for full in ("strengths", "weaknesses", "questions", "flag for ethics review"):
        if full.startswith(name[:6]):
            return full
    return name


def _pieces(body: str) -> list[tuple[str, str]]:
    """(kind, text) per reviewer / meta review / decision block, in order."""
    out = []
    for chunk in _SEP.split(body):
        marks = list(_TOP.finditer(chunk))
        starts = [0] + [m.start() for m in marks if m.start() > 0]
        for a, b in zip(starts, starts[1:] + [len(chunk)]):
            piece = chunk[a:b].strip()
            m = _TOP.match(piece)
            kind = re.sub(r"\s+", " ", m.group("kind").lower()) if m else ""
            kind = "reviewer" if kind.startswith("reviewer") else kind
            text = piece[m.end():].strip() if m else piece
            if not kind and FIELD.search(text):
                kind = "reviewer"
            if kind:
                out.append((kind, text))
    return out


def _ethics(text: str | None) -> bool | None:
    if not text:
        return None
    if re.match(r"[\W_]*(no\b|none\b|n/?a\b|not\b)", text, re.I):
        return False
    return True if re.match(r"[\W_]*yes\b", text, re.I) else None


def _reviewer(n: int, text: str, issues: list[str]) -> dict[str, Any]:
    secs, _ = t.split_sections(text, FIELD, _canon)
    own: list[str] = []
    rv: dict[str, Any] = {"reviewer": n, "summary": t.text_or_none(secs.get("summary"))}
    for k in ("soundness", "presentation", "contribution"):
        rv[k] = t.score(secs.get(k), k, *RANGES[k], own)
    rv.update({k: t.bullets(secs.get(k)) for k in ("strengths", "weaknesses", "questions")})
    rv["ethics_review"] = t.text_or_none(secs.get("flag for ethics review"))
    rv["ethics_flag"] = _ethics(rv["ethics_review"])
    for k in ("rating", "confidence"):
        rv[k] = t.score(secs.get(k), k, *RANGES[k], own)
    own += [f"{k}: missing" for k in ("summary", *SCORES) if rv[k] is None and not any(
        i.startswith(f"{k}:") for i in own)]
    issues.extend(f"reviewer {n}: {i}" for i in own)
    return {k: rv[k] for k in REVIEWER_NAMES}


def _round_mean(vals: list[int]) -> tuple[int | None, float | None]:
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    return math.floor(mean + 0.5), mean


def _meta(text: str) -> dict[str, str | None]:
    marks = list(_JUSTIFY.finditer(text))
    out: dict[str, str | None] = {"meta_review": t.text_or_none(text[:marks[0].start()] if marks else text),
                                  "why_not_higher": None, "why_not_lower": None}
    for m, nxt in zip(marks, marks[1:] + [None]):
        out[f"why_not_{m.group('which').lower()}"] = t.text_or_none(text[m.end():nxt.start() if nxt else None])
    return out


@register
class CycleReviewerFormat(ReviewFormat):
    name = "cyclereviewer"
    aliases = ("cycle-reviewer", "cycle_reviewer")
    seed_name = "CycleReviewer"
    instruction = INSTRUCTION

    def parse(self, text: str) -> ParsedReview:
        r = ParsedReview(format=self.name, required=self.required)
        pieces = _pieces(t.strip_eos(text))
        reviewers = [_reviewer(i, body, r.issues)
                     for i, body in enumerate((b for k, b in pieces if k == "reviewer"), 1)]
        metas = [b for k, b in pieces if k == "meta review"]
        decisions = [b for k, b in pieces if k == "paper decision"]
        if not reviewers:
            r.issues.append("no reviewer found (## Reviewer / ### Summary ... ### Confidence)")
        elif len(reviewers) != N_REVIEWERS:
            r.issues.append(f"reviewers: {len(reviewers)} found, {N_REVIEWERS} expected")
        self._aggregate(r, reviewers)
        r.extra.update(_meta(metas[0]) if metas else {"meta_review": None, "why_not_higher": None,
                                                      "why_not_lower": None})
        line = decisions[0].strip().split("\n", 1)[0].strip() if decisions and decisions[0].strip() else None
        r.decision = t.decision(line)
        r.issues += [f"{k}: missing" for k, v in (("meta review", r.extra["meta_review"]), ("decision", r.decision))
                     if v is None]
        if len(decisions) > 1:
            r.issues.append(f"paper decision repeated {len(decisions)} times, first kept")
        r.seed_fields = self._seed(r, line)
        return r

    @staticmethod
    def _aggregate(r: ParsedReview, reviewers: list[dict[str, Any]]) -> None:
        r.reviewer_rows = reviewers
        r.summary = next((rv["summary"] for rv in reviewers if rv["summary"]), None)
        for k in ("strengths", "weaknesses", "questions"):
            setattr(r, k, [item for rv in reviewers for item in rv[k]])
        for k in SCORES:
            value, mean = _round_mean([rv[k] for rv in reviewers if rv[k] is not None])
            setattr(r, k, value)
            if k == "rating":
                r.extra["rating_mean"] = mean
        flags = [rv["ethics_flag"] for rv in reviewers if rv["ethics_flag"] is not None]
        r.extra["ethics_flag"] = any(flags) if flags else None
        r.extra["n_reviewers"] = len(reviewers)

    @staticmethod
    def _seed(r: ParsedReview, decision_line: str | None) -> dict[str, Any]:
        keys = ("summary", "soundness", "presentation", "contribution", "strengths", "weaknesses", "questions")
        return {
            "reviewers": [{**{k: rv[k] for k in keys}, "flag_for_ethics_review": rv["ethics_review"],
                           "rating": rv["rating"], "confidence": rv["confidence"]} for rv in r.reviewer_rows],
            "meta_review": r.extra["meta_review"],
            "justification_for_why_not_higher_score": r.extra["why_not_higher"],
            "justification_for_why_not_lower_score": r.extra["why_not_lower"],
            "paper_decision": decision_line,
        }
