"""``criticalneurips``: a critical NeurIPS-form review as one JSON object (the review seed's CriticalNeurIPS).

Keys: ``summary``; ``strengths_and_weaknesses`` (one markdown string); ``questions`` (one string);
``limitations_and_societal_impact``; ``soundness``/``presentation``/``contribution`` (1-4);
``overall_score`` (1-10); ``confidence`` (1-5). The short spellings ``limitations``, ``overall``
and ``rating`` are read too. Columns: ``rating`` is the overall score, ``limitations`` the
limitations text, ``strengths``/``weaknesses`` the items under the Strengths / Weaknesses
headings of ``strengths_and_weaknesses``, ``questions`` its list items. The format has no
decision. Usable when the summary and all five scores are present.
"""

from __future__ import annotations

import re
from typing import Any

from longsweep.papers.formats import text as t
from longsweep.papers.formats.base import ParsedReview, ReviewFormat, finish, register, set_scores
from longsweep.papers.formats.generic_json import CUT_OFF

INSTRUCTION = (
    "You are a demanding, top-tier reviewer for NeurIPS. Review the paper from two angles at once. As a "
    "conceptual critic and historian, question its core ideas from first principles and place them in the "
    "wider literature, naming the prior work the authors should engage with. As a methodological skeptic, "
    "examine the experimental design, the evidence and the unstated assumptions, and say which results "
    "would not survive scrutiny and why. Be specific, fair and constructive."
)
ANSWER_FORMAT = (
    "Answer with one JSON object and nothing else, with these keys: "
    '"summary" (string: a short, neutral summary of the paper and its claims, not a critique), '
    '"strengths_and_weaknesses" (string, markdown, with a "## Strengths" and a "## Weaknesses" list covering '
    'originality, quality, clarity and significance), '
    '"questions" (string: 3 to 5 numbered questions or suggestions whose answers could change your evaluation), '
    '"limitations_and_societal_impact" (string: whether limitations and negative societal impact are '
    'addressed, with suggestions if not), '
    '"soundness", "presentation", "contribution" (integers 1-4: 1 poor, 2 fair, 3 good, 4 excellent), '
    '"overall_score" (integer 1-10: 1 very strong reject, 4 borderline reject, 5 borderline accept, '
    '6 weak accept, 8 strong accept, 10 award quality), "confidence" (integer 1-5: 1 educated guess, 5 certain).'
)
KEYS = ("summary", "strengths_and_weaknesses", "questions", "limitations_and_societal_impact", "soundness",
        "presentation", "contribution", "overall_score", "confidence")
JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{k: {"type": "string"} for k in KEYS[:4]},
        # enums, not minimum/maximum: llama.cpp's grammar ignores integer bounds
        "soundness": {"type": "integer", "enum": [1, 2, 3, 4]},
        "presentation": {"type": "integer", "enum": [1, 2, 3, 4]},
        "contribution": {"type": "integer", "enum": [1, 2, 3, 4]},
        "overall_score": {"type": "integer", "enum": list(range(1, 11))},
        "confidence": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
    },
    "required": list(KEYS),
}
_SW_HEAD = re.compile(r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*(?P<name>strengths?|weakness(?:es)?)\b[^\n]*$",
                      re.M | re.I)
SCORES = {"soundness": "soundness", "presentation": "presentation", "contribution": "contribution",
          "rating": "overall_score", "confidence": "confidence"}


def split_strengths_weaknesses(text: str | None) -> tuple[list[str], list[str], bool]:
    """Items under the Strengths and the Weaknesses headings, and whether either heading was found."""
    marks = [m for m in _SW_HEAD.finditer(text or "") if len(m.group(0).strip().strip("#*_ :")) < 40]
    parts: dict[str, list[str]] = {"s": [], "w": []}
    for m, nxt in zip(marks, marks[1:] + [None]):
        body = (text or "")[m.end():nxt.start() if nxt else None]
        parts[m.group("name")[0].lower()] += t.bullets(body)
    return parts["s"], parts["w"], bool(marks)


def _first(raw: dict[str, Any], *keys: str) -> Any:
    return next((raw[k] for k in keys if raw.get(k) not in (None, "")), None)


@register
class CriticalNeurIPSFormat(ReviewFormat):
    name = "criticalneurips"
    aliases = ("critical-neurips", "critical_neurips")
    seed_name = "CriticalNeurIPS"
    instruction = INSTRUCTION
    answer_format = ANSWER_FORMAT
    paper_prefix = "Paper:\n\n"
    json_schema = JSON_SCHEMA
    required = ("summary", *SCORES)

    def parse(self, text: str) -> ParsedReview:
        raw, closed = t.json_object(t.strip_eos(text))
        r = ParsedReview(format=self.name, required=self.required)
        if raw is None:
            r.issues.append("no JSON object found")
            return r
        if closed:
            r.issues.append(CUT_OFF)
        raw["overall_score"] = _first(raw, "overall_score", "overall", "rating")
        raw["limitations_and_societal_impact"] = _first(raw, "limitations_and_societal_impact", "limitations")
        r.summary = t.text_or_none(raw.get("summary"))
        sw = t.text_or_none(raw.get("strengths_and_weaknesses"))
        r.strengths, r.weaknesses, found = split_strengths_weaknesses(sw)
        if not sw:
            r.issues.append("strengths_and_weaknesses: missing")
        elif not found:
            r.issues.append("strengths_and_weaknesses: no Strengths / Weaknesses headings")
        r.questions = t.as_list(raw.get("questions"))
        r.extra["limitations"] = t.text_or_none(raw.get("limitations_and_societal_impact"))
        set_scores(r, raw, SCORES)
        r.seed_fields = {k: raw.get(k) for k in KEYS[:4]}
        r.seed_fields.update(soundness=r.soundness, presentation=r.presentation, contribution=r.contribution,
                             overall_score=r.rating, confidence=r.confidence)
        return finish(r, ("summary", "questions", "limitations", *SCORES))
