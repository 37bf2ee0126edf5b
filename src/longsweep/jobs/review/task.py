"""Worker side of the review job: one fitted paper prompt in, one review row out.

A multi-reviewer answer (CycleReviewer) also gives one row per reviewer, written to the sweep's
``reviewers`` table through a second sink beside the worker's (``<sweep>/reviewers/``) before the review
rows are returned; each carries its review row's ``key`` and ``finished_at``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from longsweep.engines.base import GenerationRequest, GenerationResult
from longsweep.errors import ErrorKind
from longsweep.jobs.base import WorkItem
from longsweep.jobs.review.options import ReviewOptions
from longsweep.jobs.review.record import REVIEWER_SCHEMA, REVIEWERS_TABLE, reviewer_rows, unparseable_error
from longsweep.papers.formats import format_for_model
from longsweep.runtime.context import WorkerContext
from longsweep.runtime.sink import RowSink


class ReviewPayload(BaseModel):
    """A review work item as it crosses to the worker: the row's record columns and the prompt."""

    model_config = ConfigDict(extra="forbid")
    record: dict[str, Any]  # PaperRecord.row_fields() + run + seed: copied into the row as they are
    messages: list[dict[str, Any]]
    images: list[str] = []
    max_tokens: int
    meta: dict[str, Any] = {}  # known flaws, CSV row, metadata: reach the prompt only through the driver


class ReviewTask:
    def __init__(self, ctx: WorkerContext, opts: ReviewOptions):
        self.ctx, self.opts = ctx, opts
        self.format = format_for_model(ctx.spec.name, opts.format or ctx.spec.prompt_family)
        self.schema_json = self.format.json_schema if opts.constrain_json else None
        self.reviewers = (RowSink(ctx.sink.dir.parent / REVIEWERS_TABLE, REVIEWER_SCHEMA)
                          if ctx.sink is not None else None)

    def _accept(self, res: GenerationResult) -> tuple[bool, Any, str]:
        p = self.format.parse(res.text)
        if p.ok:
            return True, p, ""
        return False, p, unparseable_error(p.issues)

    async def run(self, items: list[WorkItem]) -> list[dict[str, Any]]:
        payloads = [ReviewPayload.model_validate(it.payload) for it in items]
        reqs = [GenerationRequest(messages=p.messages, max_tokens=p.max_tokens, temperature=self.opts.temperature,
                                  seed=int(p.record["seed"]), json_schema=self.schema_json,
                                  repetition_penalty=self.opts.repetition_penalty, images=tuple(p.images))
                for p in payloads]
        outs = await self.ctx.generate_many([(it.key, r, self._accept) for it, r in zip(items, reqs)])
        rows, per_reviewer = [], []
        for it, p, req, out in zip(items, payloads, reqs, outs):
            row = self.ctx.outcome_row(it.key, out, req.seed)
            row.update(p.record)
            if out.parsed is not None:
                row.update(out.parsed.fields())
                row["parse_issues"] = out.parsed.issues
                per_reviewer += reviewer_rows(row, out.parsed.reviewers())
            if out.result is not None:
                row["raw_content"] = out.result.text
            if not out.ok and out.error_kind == ErrorKind.REJECTED_OUTPUT:
                row["error_kind"] = ErrorKind.UNPARSEABLE_REVIEW.value
            rows.append(row)
        if self.reviewers is not None and per_reviewer:
            self.reviewers.add(per_reviewer)
            self.reviewers.flush()  # before the review rows leave: no review row without its reviewers
        return rows
