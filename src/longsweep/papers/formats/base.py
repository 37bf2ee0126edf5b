"""What every reviewer format shares: the parsed columns, the parse result, the format contract.

A format is a prompt family and its parser: ``messages()`` builds the chat request of one
paper, ``parse()`` reads the model's answer into ``ParsedReview``. Formats register their
class with ``@register``; ``longsweep.papers.formats`` looks them up by name.

Columns (``PARSED_FIELDS``) are the union over all formats, so every review row has the
same schema: a format leaves the columns it does not produce null. ``REVIEWER_FIELDS``
are the columns of one reviewer of a multi-reviewer answer (CycleReviewer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from longsweep.papers.formats.text import score
from longsweep.tokens import Message

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
_LIST = pa.list_(_S)

COMMON_FIELDS: list[tuple[str, pa.DataType]] = [
    ("summary", _S), ("strengths", _LIST), ("weaknesses", _LIST), ("questions", _LIST),
    ("soundness", _I), ("presentation", _I), ("contribution", _I), ("rating", _I), ("confidence", _I),
    ("decision", _S),
]
EXTRA_FIELDS: list[tuple[str, pa.DataType]] = [
    ("review_format", _S),       # the format whose parser read the answer
    ("decision_reasons", _S),    # sea: the "- Reasons:" of the paper decision
    ("limitations", _S),         # criticalneurips: limitations and societal impact
    ("meta_review", _S),         # cyclereviewer: the meta review
    ("why_not_higher", _S),      # cyclereviewer: justification for why not a higher score
    ("why_not_lower", _S),       # cyclereviewer: justification for why not a lower score
    ("ethics_flag", _B),         # cyclereviewer: some reviewer flagged the paper for an ethics review
    ("n_reviewers", _I),         # cyclereviewer: reviewers found in the answer
    ("rating_mean", _F),         # cyclereviewer: the exact mean of the reviewers' ratings
]
PARSED_FIELDS: list[tuple[str, pa.DataType]] = COMMON_FIELDS + EXTRA_FIELDS
PARSED_NAMES: tuple[str, ...] = tuple(n for n, _ in PARSED_FIELDS)

REVIEWER_FIELDS: list[tuple[str, pa.DataType]] = [
    ("reviewer", _I), ("summary", _S), ("soundness", _I), ("presentation", _I), ("contribution", _I),
    ("strengths", _LIST), ("weaknesses", _LIST), ("questions", _LIST), ("ethics_flag", _B),
    ("ethics_review", _S), ("rating", _I), ("confidence", _I),
]

RANGES = {"soundness": (1, 4), "presentation": (1, 4), "contribution": (1, 4), "rating": (1, 10),
          "confidence": (1, 5)}


@dataclass
class ParsedReview:
    """One answer read by one format. Missing or invalid values stay None and are named in ``issues``."""

    format: str = "none"
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
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific columns (EXTRA_FIELDS)
    reviewer_rows: list[dict[str, Any]] = field(default_factory=list)
    seed_fields: dict[str, Any] = field(default_factory=dict)  # the review seed's keys, in its order
    issues: list[str] = field(default_factory=list)
    required: tuple[str, ...] = ("summary", "rating")

    def get(self, name: str) -> Any:
        if name in self.__dataclass_fields__ and name not in ("extra", "issues", "required"):
            return getattr(self, name)
        return self.extra.get(name)

    @property
    def ok(self) -> bool:
        """Usable: every field the format requires is present."""
        return all(self.get(k) not in (None, "", []) for k in self.required)

    def missing(self) -> list[str]:
        return [k for k in self.required if self.get(k) in (None, "", [])]

    def fields(self) -> dict[str, Any]:
        """Every column of ``PARSED_FIELDS``; those this format does not produce are None."""
        out = {n: self.get(n) for n in PARSED_NAMES}
        out["review_format"] = self.format
        return out

    def reviewers(self) -> list[dict[str, Any]]:
        """One dict per reviewer (``REVIEWER_FIELDS``) for multi-reviewer formats, else []."""
        return [dict(r) for r in self.reviewer_rows]


def set_scores(r: ParsedReview, raw: dict[str, Any], names: dict[str, str]) -> None:
    """Scores from ``raw``; ``names`` maps each of our score columns to the key that holds it."""
    for col, key in names.items():
        lo, hi = RANGES[col]
        setattr(r, col, score(raw.get(key), col, lo, hi, r.issues))


def finish(r: ParsedReview, expected: tuple[str, ...]) -> ParsedReview:
    """Name every expected field that is absent in ``issues``."""
    for k in expected:
        if r.get(k) in (None, "", []):
            r.issues.append(f"{k}: missing")
    return r


FORMATS: dict[str, type["ReviewFormat"]] = {}


def register(cls: type["ReviewFormat"]) -> type["ReviewFormat"]:
    """Class decorator: make a format reachable by its ``name`` and its ``aliases``."""
    for n in (cls.name, *cls.aliases):
        FORMATS[n.lower()] = cls
    return cls


def context_block(version: str | None, context: str | None, captions: list[str] | None,
                  images: list[str] | None) -> str:
    """The per-request material after the paper: version, meta.json context, captions, image slots."""
    parts = []
    if version:
        parts.append(f"Paper version: {version}")
    if context:
        parts.append(f"Context for this version: {context}")
    if captions:
        parts.append("Figure captions:\n" + "\n".join(f"- {c}" for c in captions))
    if images:
        parts.append("Figures:\n" + "\n".join(images))
    return "\n\n".join(parts)


class ReviewFormat:
    """A prompt family and its parser.

    ``instruction`` goes in the system message (``system_prompt`` replaces it: the registry's
    ``system_prompt_file``); the paper, then the context block, then ``answer_format`` (if any)
    go in the user message. A template without a system role gets them folded by
    ``tokens.merge_system`` (registry ``supports_system_role: false``).
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    seed_name: ClassVar[str] = ""  # the review seed's ``model_type`` for this format
    instruction: ClassVar[str] = ""
    paper_prefix: ClassVar[str] = ""   # before the paper in the user message
    answer_format: ClassVar[str] = ""  # after the paper and its context in the user message
    json_schema: ClassVar[dict[str, Any] | None] = None  # for engines that constrain decoding
    required: ClassVar[tuple[str, ...]] = ("summary", "rating")  # what makes an answer usable (``ok``)

    def messages(self, paper_text: str, *, version: str | None = None, context: str | None = None,
                 captions: list[str] | None = None, images: list[str] | None = None,
                 system_prompt: str | None = None) -> list[Message]:
        """Chat messages of one review request; ``paper_text`` is the (fitted) paper."""
        extra = context_block(version, context, captions, images)
        user = "\n\n".join(p for p in (self.paper_prefix + paper_text, extra, self.answer_format) if p)
        system = system_prompt if system_prompt is not None else self.instruction
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def parse(self, text: str) -> ParsedReview:  # pragma: no cover - every format overrides it
        """The answer read into a ``ParsedReview``; never raises on bad or cut-off text."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<review format {self.name}>"
