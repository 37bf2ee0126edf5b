"""The ``review`` task of a ModelWorker: one fitted paper prompt in, one review row out."""

from __future__ import annotations

from typing import Any

from longsweep.engines.base import GenerationRequest, GenerationResult
from longsweep.papers.prompts import REVIEW_JSON_SCHEMA
from longsweep.papers.reviews import parse_review
from longsweep.results import REVIEW_SCHEMA
from longsweep.runtime.worker import WorkerContext

# columns carried from the planned item into the row as they are
ITEM_COLUMNS = ("paper_id", "version", "run", "was_truncated", "truncation_stages", "tokens_full", "tokens_fitted",
                "budget_tokens", "tokens_exact", "chars_removed", "n_figures", "n_images", "hidden_text",
                "hidden_text_chars")


class ReviewTask:
    schema = REVIEW_SCHEMA

    def __init__(self, ctx: WorkerContext, *, family: str = "json", constrain_json: bool = True,
                 temperature: float = 0.0, repetition_penalty: float = 1.0):
        self.ctx, self.family = ctx, family
        self.schema_json = REVIEW_JSON_SCHEMA if (family == "json" and constrain_json) else None
        self.temperature, self.repetition_penalty = temperature, repetition_penalty

    def _accept(self, res: GenerationResult) -> tuple[bool, Any, str]:
        p = parse_review(res.text)
        if p.ok:
            return True, p, ""
        return False, p, "unparseable review: " + "; ".join(p.issues[:3])

    def run(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        reqs = [GenerationRequest(messages=it["messages"], max_tokens=int(it["max_tokens"]),
                                  temperature=self.temperature, seed=int(it["seed"]), json_schema=self.schema_json,
                                  repetition_penalty=self.repetition_penalty, images=tuple(it.get("images") or ()))
                for it in items]
        outs = self.ctx.generate_many([(it["key"], r, self._accept) for it, r in zip(items, reqs)])
        rows = []
        for it, req, out in zip(items, reqs, outs):
            row = self.ctx.common_row(it["key"], out, req.seed)
            row.update({k: it.get(k) for k in ITEM_COLUMNS})
            parsed = out.parsed
            if parsed is not None:
                row.update(parsed.fields())
                row["parse_issues"] = parsed.issues
            if out.result is not None:
                row["raw_content"] = out.result.text
            if not out.ok and out.error_kind == "rejected_output":
                row["error_kind"] = "unparseable_review"
            rows.append(row)
        return rows
