"""Worker side of ``generate``: one prompt (chat messages) in, one generation row out."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from longsweep.engines.base import GenerationRequest
from longsweep.jobs.base import WorkItem
from longsweep.runtime.context import WorkerContext


class PromptPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    messages: list[dict[str, Any]]
    sampling: dict[str, Any] = {}

    def request(self) -> GenerationRequest:
        s = self.sampling
        return GenerationRequest(
            messages=self.messages, max_tokens=int(s.get("max_tokens", 256)),
            temperature=float(s.get("temperature", 0.0)), top_p=float(s.get("top_p", 1.0)),
            seed=s.get("seed", 0), stop=tuple(s.get("stop", ())), json_schema=s.get("json_schema"),
            repetition_penalty=float(s.get("repetition_penalty", 1.0)),
        )


class GenerateTask:
    def __init__(self, ctx: WorkerContext):
        self.ctx = ctx

    async def run(self, items: list[WorkItem]) -> list[dict[str, Any]]:
        payloads = [PromptPayload.model_validate(it.payload) for it in items]
        reqs = [p.request() for p in payloads]
        outs = await self.ctx.generate_many([(it.key, r, None) for it, r in zip(items, reqs)])
        rows = []
        for it, p, req, out in zip(items, payloads, reqs, outs):
            row = self.ctx.outcome_row(it.key, out, req.seed)
            row.update(id=p.id, text=out.result.text if out.result else None)
            rows.append(row)
        return rows
