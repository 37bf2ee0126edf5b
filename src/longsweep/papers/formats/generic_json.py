"""``json``: our default format, a NeurIPS-style review as one JSON object.

Keys: summary, strengths[], weaknesses[], questions[], soundness/presentation/contribution
(1-4), rating (1-10), confidence (1-5), decision (Accept/Reject). ``json_schema`` constrains
engines that support it; an answer cut off by ``max_tokens`` keeps its complete fields.
Usable when it has a summary and a rating.
"""

from __future__ import annotations

from typing import Any

from longsweep.papers.formats import text as t
from longsweep.papers.formats.base import ParsedReview, ReviewFormat, finish, register, set_scores

INSTRUCTION = (
    "You are an expert reviewer for a top machine learning conference. Read the paper and write a "
    "careful, critical review."
)
ANSWER_FORMAT = (
    "Answer with one JSON object and nothing else, with these keys: "
    '"summary" (string), "strengths" (list of strings), "weaknesses" (list of strings), '
    '"questions" (list of strings), "soundness" (integer 1-4), "presentation" (integer 1-4), '
    '"contribution" (integer 1-4), "rating" (integer 1-10), "confidence" (integer 1-5), '
    '"decision" ("Accept" or "Reject").'
)

REVIEW_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # no maxLength: llama.cpp unrolls it into a grammar of nested optionals that crashes its sampler
        "summary": {"type": "string"},
        "strengths": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "weaknesses": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "questions": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        # enums, not minimum/maximum: llama.cpp's grammar ignores integer bounds
        "soundness": {"type": "integer", "enum": [1, 2, 3, 4]},
        "presentation": {"type": "integer", "enum": [1, 2, 3, 4]},
        "contribution": {"type": "integer", "enum": [1, 2, 3, 4]},
        "rating": {"type": "integer", "enum": list(range(1, 11))},
        "confidence": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "decision": {"type": "string", "enum": ["Accept", "Reject"]},
    },
    "required": ["summary", "strengths", "weaknesses", "questions", "soundness", "presentation",
                 "contribution", "rating", "confidence", "decision"],
}

CUT_OFF = "output cut off: the JSON object was not closed (kept its complete fields)"


@register
class JsonFormat(ReviewFormat):
    name = "json"
    aliases = ("default", "generic")
    seed_name = "default"
    instruction = INSTRUCTION
    answer_format = ANSWER_FORMAT
    paper_prefix = "Paper:\n\n"
    json_schema = REVIEW_JSON_SCHEMA
    expected = ("summary", "soundness", "presentation", "contribution", "rating", "confidence", "decision")

    def parse(self, text: str) -> ParsedReview:
        raw, closed = t.json_object(t.strip_eos(text))
        r = ParsedReview(format=self.name, required=self.required)
        if raw is None:
            r.issues.append("no JSON object found")
            return r
        if closed:
            r.issues.append(CUT_OFF)
        if "rating" not in raw:
            raw["rating"] = raw.get("overall", raw.get("overall_score"))
        r.summary = t.text_or_none(raw.get("summary"))
        r.strengths, r.weaknesses, r.questions = (t.as_list(raw.get(k)) for k in ("strengths", "weaknesses",
                                                                                     "questions"))
        set_scores(r, raw, {k: k for k in ("soundness", "presentation", "contribution", "rating", "confidence")})
        r.decision = t.decision(raw.get("decision"))
        r.seed_fields = {k: r.get(k) for k in ("summary", "strengths", "weaknesses", "questions", "soundness",
                                               "presentation", "contribution", "rating", "confidence",
                                               "decision")}
        return finish(r, self.expected)
