"""Review prompts per prompt family.

``sea``: SEA-E's instruction in the user turn (Mistral v0.2 has no system role),
answered with markdown sections. ``json``: a NeurIPS-style review as one JSON object.
The user turn can carry the paper version and per-version context from meta.json.
"""

from __future__ import annotations

from typing import Any

from longsweep.tokens import Message

SEA_INSTRUCTION = (
    "You are a professional machine learning conference reviewer who reviews a given paper and "
    "considers 4 criteria: importance and novelty, potential reasons for acceptance, potential "
    "reasons for rejection, and suggestions for improvement. The given paper is as follows."
)
SEA_FORMAT = (
    "Write the review in this format:\n"
    "**Summary:**\n<summary>\n\n**Strengths:**\n- <strength>\n\n**Weaknesses:**\n- <weakness>\n\n"
    "**Questions:**\n- <question>\n\n**Soundness:**\n<1-4> <poor|fair|good|excellent>\n\n"
    "**Presentation:**\n<1-4> <label>\n\n**Contribution:**\n<1-4> <label>\n\n**Rating:**\n<1-10> <label>\n\n"
    "**Paper Decision:**\n- Decision: <Accept|Reject>\n- Reasons: <reasons>"
)

JSON_SYSTEM = (
    "You are an expert reviewer for a top machine learning conference. Read the paper and write a "
    "careful, critical review."
)
JSON_FORMAT = (
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


def _context_block(version: str | None, context: str | None, captions: list[str], image_slots: list[str]) -> str:
    parts = []
    if version:
        parts.append(f"Paper version: {version}")
    if context:
        parts.append(f"Context for this version: {context}")
    if captions:
        parts.append("Figure captions:\n" + "\n".join(f"- {c}" for c in captions))
    if image_slots:
        parts.append("Figures:\n" + "\n".join(image_slots))
    return "\n\n".join(parts)


def image_slots(figures: list[tuple[int | None, str]], placeholder: str) -> list[str]:
    """One line per image sent: where it is from, the model's image placeholder, its caption."""
    return [f"Figure {i} (page {page}): {placeholder} {cap}".rstrip() if page else
            f"Figure {i}: {placeholder} {cap}".rstrip() for i, (page, cap) in enumerate(figures, 1)]


def review_messages(paper: str, *, family: str, version: str | None = None, context: str | None = None,
                    captions: list[str] | None = None, images: list[str] | None = None) -> list[Message]:
    """Chat messages of one review request; ``paper`` is the (fitted) paper text.

    ``captions`` go in as text (models without images); ``images`` are ``image_slots`` lines,
    each holding the placeholder that the engine replaces by one image's tokens."""
    extra = _context_block(version, context, captions or [], images or [])
    if family == "sea":
        user = f"{SEA_INSTRUCTION}\n\n{paper}\n\n" + (f"{extra}\n\n" if extra else "") + SEA_FORMAT
        return [{"role": "user", "content": user}]
    if family == "json":
        user = f"Paper:\n\n{paper}\n\n" + (f"{extra}\n\n" if extra else "") + JSON_FORMAT
        return [{"role": "system", "content": JSON_SYSTEM}, {"role": "user", "content": user}]
    raise ValueError(f"unknown prompt family {family!r} (sea or json)")
