"""Review prompts: the messages of one review request, per reviewer format.

The formats themselves (instruction, answer layout, JSON schema, parser) live in
``longsweep.papers.formats``; this module keeps the names that callers and benchmarks use.
"""

from __future__ import annotations

from longsweep.papers.formats import get_format
from longsweep.papers.formats.generic_json import REVIEW_JSON_SCHEMA
from longsweep.tokens import Message

__all__ = ["REVIEW_JSON_SCHEMA", "image_slots", "review_messages"]


def image_slots(figures: list[tuple[int | None, str]], placeholder: str) -> list[str]:
    """One line per image sent: where it is from, the model's image placeholder, its caption."""
    return [f"Figure {i} (page {page}): {placeholder} {cap}".rstrip() if page else
            f"Figure {i}: {placeholder} {cap}".rstrip() for i, (page, cap) in enumerate(figures, 1)]


def review_messages(paper: str, *, family: str, version: str | None = None, context: str | None = None,
                    captions: list[str] | None = None, images: list[str] | None = None,
                    system_prompt: str | None = None) -> list[Message]:
    """Chat messages of one review request in format ``family``; ``paper`` is the (fitted) paper text.

    ``captions`` go in as text (models without images); ``images`` are ``image_slots`` lines, each
    holding the placeholder that the engine replaces by one image's tokens; ``system_prompt``
    replaces the format's instruction."""
    return get_format(family).messages(paper, version=version, context=context, captions=captions,
                                       images=images, system_prompt=system_prompt)
