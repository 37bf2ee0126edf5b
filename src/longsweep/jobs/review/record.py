"""The prepared-paper record: what ingest + fit learned of one (paper, version) for one model.

Its ``ROW_FIELDS`` are columns of every review row, carried from the driver to the row as they are;
the other fields are what ``longsweep plan`` prints. ``REVIEWER_COLUMNS`` are the columns of the
``reviewers`` table: one row per reviewer of a multi-reviewer answer (CycleReviewer), tied to its review
row by ``key`` and ``finished_at``.
"""

from __future__ import annotations

import pyarrow as pa
from typing import Any

from pydantic import BaseModel, ConfigDict

from longsweep.papers.formats import REVIEWER_FIELDS

_S, _I, _B = pa.string(), pa.int64(), pa.bool_()

# (column, Arrow type) of the record's fields that every review row carries
ROW_FIELDS: list[tuple[str, pa.DataType]] = [
    ("paper_id", _S), ("version", _S),
    ("source_path", _S),  # the file reviewed, resolved (a pairs CSV's folder path leads to it)
    ("was_truncated", _B), ("truncation_stages", pa.list_(_S)), ("tokens_full", _I), ("tokens_fitted", _I),
    ("budget_tokens", _I), ("tokens_exact", _B), ("chars_removed", _I), ("n_figures", _I), ("n_images", _I),
    ("hidden_text", _B), ("hidden_text_chars", _I),
    ("pdf_repaired", _B),  # PyMuPDF repaired the PDF (reviewed only with --accept-repaired-pdfs)
    ("flaw_context", _B),  # the prompt carried the paper's known flaws (--flaw-context and some are known)
    ("n_known_flaws", _I),  # known flaws of the paper (pairs CSV flaw_descriptions, meta.json flaws)
]

REVIEWERS_TABLE = "reviewers"
# the reviewers table: the review's identity, then one reviewer's fields (papers.formats.REVIEWER_FIELDS)
REVIEWER_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("key", _S), ("sweep_id", _S), ("model", _S), ("status", _S), ("paper_id", _S), ("version", _S),
    ("run", _I), ("finished_at", _S),
] + REVIEWER_FIELDS
REVIEWER_SCHEMA = pa.schema(REVIEWER_COLUMNS)


def unparseable_error(issues: list[str]) -> str:
    """The ``error`` of a review row whose answer its format's parser cannot use."""
    return "unparseable review: " + "; ".join(issues[:3])


def reviewer_rows(row: dict[str, Any], reviewers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reviewers table's rows of one review row (its ``key`` and ``finished_at`` tie them to it)."""
    ids = {name: row.get(name) for name, _ in REVIEWER_COLUMNS[:8]}
    return [{**ids, **{name: rv.get(name) for name, _ in REVIEWER_FIELDS}} for rv in reviewers]


class PaperRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paper_id: str
    version: str
    source: str | None = None
    source_path: str | None = None
    error: str | None = None
    error_kind: str | None = None
    pages: int | None = None
    chars: int | None = None
    title: str | None = None
    n_figures: int | None = None
    n_images: int | None = None
    hidden_text: bool | None = None
    hidden_text_chars: int | None = None
    hidden_reasons: list[str] = []
    pdf_repaired: bool | None = None
    flaw_context: bool | None = None
    n_known_flaws: int | None = None
    ingest_s: float | None = None
    budget_tokens: int | None = None
    tokens_full: int | None = None
    tokens_fitted: int | None = None
    was_truncated: bool | None = None
    truncation_stages: list[str] = []
    stage_tokens: list[str] = []
    chars_removed: int | None = None
    tokens_exact: bool | None = None
    max_tokens: int | None = None
    fit_s: float | None = None

    def row_fields(self) -> dict:
        """The columns every review row of this (paper, version) carries."""
        return {name: getattr(self, name) for name, _ in ROW_FIELDS}
