"""Worker side of the judge job: one judge call per item, one row per criterion (or flaw).

A row is ``ok`` only with a valid score (or ``detected``) read from the answer; otherwise it is an
error row: ``unparseable_judgment`` with the reason when the judge answered, the engine's own kind
(prompt too long, engine error) when it did not. An answer missing some scores is retried (after a
reset) up to ``max_retries`` times; the last answer's valid judgements are kept. The call's token
usage (prompt, completion, cached tokens) is on the first row of its item only, so sums count it once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from longsweep.engines.base import GenerationRequest, GenerationResult
from longsweep.errors import ErrorKind
from longsweep.jobs.base import WorkItem
from longsweep.jobs.judge.options import JudgeOptions
from longsweep.jobs.judge.parse import FLAW, Judgement, parse_answer
from longsweep.jobs.judge.rubric import Rubric
from longsweep.runtime.context import WorkerContext
from longsweep.runtime.retry import Outcome


class JudgePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[dict[str, str]]
    max_tokens: int
    seed: int
    columns: dict[str, Any]  # the source row's context, the run, and what fitting cost
    rows: list[dict[str, Any]]  # {key, criterion, flaw_index, flaw} per row of the item


class JudgeTask:
    def __init__(self, ctx: WorkerContext, rubric: Rubric, opts: JudgeOptions):
        self.ctx, self.rubric = ctx, rubric
        constrain = rubric.constrain_json if opts.constrain_json is None else opts.constrain_json
        self.schema = rubric.json_schema() if constrain else None
        self.temperature = rubric.temperature if opts.temperature is None else opts.temperature

    def _accept(self, res: GenerationResult) -> tuple[bool, Any, str]:
        parsed = parse_answer(res.text, self.rubric, res.finish_reason)
        bad = [j.error for j in parsed.values() if j.error]
        return (not bad), parsed, "; ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")

    async def run(self, items: list[WorkItem]) -> list[dict[str, Any]]:
        payloads = [JudgePayload.model_validate(it.payload) for it in items]
        reqs = [GenerationRequest(messages=p.messages, max_tokens=p.max_tokens, temperature=self.temperature,
                                  seed=p.seed, stop=tuple(self.rubric.stop), json_schema=self.schema,
                                  repetition_penalty=self.rubric.repetition_penalty) for p in payloads]
        outs = await self.ctx.generate_many([(it.key, r, self._accept) for it, r in zip(items, reqs)])
        rows: list[dict[str, Any]] = []
        for it, p, req, out in zip(items, payloads, reqs, outs):
            item_rows = [self._row(it, p, spec, req, out) for spec in p.rows]
            for r in item_rows[1:]:  # one call: its token usage is on the item's first row, so sums hold
                r.update(prompt_tokens=None, completion_tokens=None, cached_tokens=None)
            rows += item_rows
        return rows

    def _row(self, it: WorkItem, p: JudgePayload, spec: dict[str, Any], req: GenerationRequest,
             out: Outcome) -> dict[str, Any]:
        row = self.ctx.outcome_row(spec["key"], out, req.seed, item_key=it.key)
        row.update(p.columns, criterion=spec["criterion"], flaw_index=spec["flaw_index"], flaw=spec["flaw"],
                   judge_answer=out.result.text if out.result else None)
        if out.result is None:  # the engine gave no answer: its own error kind and reason stay
            return row
        parsed: dict[str, Judgement] = out.parsed or {}
        j = parsed.get(FLAW if self.rubric.kind == "flaws" else spec["criterion"]) or Judgement(error="not parsed")
        row.update(score=j.score, detected=j.detected, evidence=j.evidence, reasoning=j.reasoning)
        if j.error is None:
            row.update(status="ok", error=None, error_kind=None)
        else:
            row.update(status="error", error_kind=str(ErrorKind.UNPARSEABLE_JUDGMENT),
                       error=f"{j.error} (last of {out.attempts} attempt(s))", score=None, detected=None)
        return row
