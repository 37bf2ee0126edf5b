"""Worker side of ``generate``: one prompt (chat messages) in, one generation row out."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from longsweep.engines.base import GenerationRequest
from longsweep.errors import ErrorKind
from longsweep.jobs.base import WorkItem
from longsweep.results import clean_text
from longsweep.runtime.context import WorkerContext


class PromptPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    messages: list[dict[str, Any]]
    sampling: dict[str, Any] = {}

    def request(self) -> GenerationRequest:
        s = self.sampling
        return GenerationRequest(
            messages=self.messages, max_tokens=self._num("max_tokens", int, 256),
            temperature=self._num("temperature", float, 0.0), top_p=self._num("top_p", float, 1.0),
            seed=s.get("seed", 0), stop=tuple(s.get("stop", ())), json_schema=s.get("json_schema"),
            repetition_penalty=self._num("repetition_penalty", float, 1.0),
        )

    def _num(self, name: str, conv, default):
        try:
            return conv(self.sampling.get(name, default))
        except (TypeError, ValueError):
            what = "an integer" if conv is int else "a number"
            raise ValueError(f"sampling.{name}: {self.sampling.get(name)!r} is not {what}") from None


class GenerateTask:
    def __init__(self, ctx: WorkerContext):
        self.ctx = ctx

    async def run(self, items: list[WorkItem]) -> list[dict[str, Any]]:
        rows, todo = [], []
        for it in items:  # one item's bad payload is its own error row, not its batch's end
            try:
                p = PromptPayload.model_validate(it.payload)
                todo.append((it, p, p.request()))
            except (ValueError, TypeError) as e:
                why = clean_text(f"{type(e).__name__}: {e}")[:500]
                rows.append(self.ctx.error_row(it.key, ErrorKind.ITEM_FAILED, f"bad prompt payload: {why}",
                                               id=str(it.payload.get("id", it.key))))
        outs = await self.ctx.generate_many([(it.key, r, None) for it, _, r in todo])
        for (it, p, req), out in zip(todo, outs):
            row = self.ctx.outcome_row(it.key, out, req.seed)
            row.update(id=p.id, text=out.result.text if out.result else None)
            rows.append(row)
        return rows
