"""Reviewer formats: a prompt family and its parser, one module each.

    fmt = format_for_model(spec.name, spec.prompt_family)      # or get_format("sea")
    messages = fmt.messages(paper_text, version="v1", context=None, captions=[], images=[],
                            system_prompt=None)                # the registry's system_prompt_file text
    fmt.json_schema                                            # dict for constrained decoding, or None
    p = fmt.parse(answer)
    p.ok, p.issues, p.fields(), p.reviewers()

``sea`` (SEA-E), ``cyclereviewer`` (CycleReviewer: four reviewers and a meta review),
``criticalneurips`` (the review seed's CriticalNeurIPS JSON) and ``json`` (our default JSON).
``PARSED_FIELDS`` are the (column, Arrow type) pairs of ``ParsedReview.fields()`` for every
format; ``REVIEWER_FIELDS`` those of each dict of ``reviewers()``.
"""

from __future__ import annotations

import re

from longsweep.errors import InputError
from longsweep.papers.formats import criticalneurips, cyclereviewer, generic_json, sea  # noqa: F401 (register)
from longsweep.papers.formats.base import (COMMON_FIELDS, EXTRA_FIELDS, FORMATS, PARSED_FIELDS, PARSED_NAMES,
                                           REVIEWER_FIELDS, ParsedReview, ReviewFormat)

__all__ = ["COMMON_FIELDS", "EXTRA_FIELDS", "PARSED_FIELDS", "PARSED_NAMES", "REVIEWER_FIELDS", "FORMAT_NAMES",
           "ParsedReview", "ReviewFormat", "format_for_model", "get_format", "guess_format"]

FORMAT_NAMES: tuple[str, ...] = tuple(sorted({cls.name for cls in FORMATS.values()}))

# (pattern on the lower-cased model name or hub id, format); the first match wins
_GUESSES = (
    (re.compile(r"cycle[-_ ]?reviewer"), "cyclereviewer"),
    (re.compile(r"critical[-_ ]?neurips"), "criticalneurips"),
    (re.compile(r"(?<![a-z0-9])sea(?:-?e)?(?![a-z])"), "sea"),
)


def get_format(name: str) -> ReviewFormat:
    """The format called ``name`` (or one of its aliases: ``SEA-E``, ``CycleReviewer``, ``default``, ...)."""
    cls = FORMATS.get((name or "").strip().lower())
    if cls is None:
        raise InputError(f"unknown review format {name!r} (one of: {', '.join(FORMAT_NAMES)})")
    return cls()


def guess_format(model_name: str) -> str:
    """The format a model's name suggests: ``...CycleReviewer...`` -> cyclereviewer, ``SEA-E`` -> sea;
    otherwise ``json``."""
    low = (model_name or "").lower()
    return next((fmt for pat, fmt in _GUESSES if pat.search(low)), "json")


def format_for_model(model_name: str, family: str | None = None) -> ReviewFormat:
    """``family`` (a ``--format`` override or the registry's ``prompt_family``) when given, else the
    format the model's name suggests."""
    return get_format(family) if family else get_format(guess_format(model_name))
