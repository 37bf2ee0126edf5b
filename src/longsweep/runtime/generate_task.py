"""The plain ``generate`` job: one prompt (chat messages) in, one generation row out."""

from __future__ import annotations

from typing import Any

from longsweep.engines.base import GenerationRequest
from longsweep.results import GENERATION_SCHEMA
from longsweep.runtime.worker import WorkerContext


def request_from_item(item: dict[str, Any]) -> GenerationRequest:
    s = item.get("sampling", {})
    return GenerationRequest(
        messages=item["messages"], max_tokens=int(s.get("max_tokens", 256)),
        temperature=float(s.get("temperature", 0.0)), top_p=float(s.get("top_p", 1.0)),
        seed=s.get("seed", 0), stop=tuple(s.get("stop", ())), json_schema=s.get("json_schema"),
        repetition_penalty=float(s.get("repetition_penalty", 1.0)),
    )


class GenerateTask:
    schema = GENERATION_SCHEMA

    def __init__(self, ctx: WorkerContext):
        self.ctx = ctx

    def run(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        reqs = [request_from_item(it) for it in items]
        outs = self.ctx.generate_many([(it["key"], r, None) for it, r in zip(items, reqs)])
        rows = []
        for it, req, out in zip(items, reqs, outs):
            row = self.ctx.common_row(it["key"], out, req.seed)
            row.update(id=it.get("id"), text=out.result.text if out.result else None)
            rows.append(row)
        return rows
