"""The ``story`` task of a ModelWorker: whole sequences, turn by turn, one row per turn.

On llama.cpp an actor runs one sequence at a time so the KV prefix of the earlier
turns is reused (only the new prompt is prefilled). On vLLM the sequences of a
batch advance in lockstep, turn k of all of them in one ``generate`` call, with
prefix caching doing the reuse. Reset policy: ``never``, ``after_chars`` (an
answer longer than ``reset_after_chars``) or ``every_turn``; a failure always resets.
"""

from __future__ import annotations

from typing import Any

from longsweep.budget import BudgetError
from longsweep.engines.base import GenerationRequest
from longsweep.results import STORY_SCHEMA
from longsweep.runtime.retry import Outcome
from longsweep.runtime.worker import WorkerContext
from longsweep.stories.window import fit_window


class _Run:
    """One (sequence, run) in progress."""

    def __init__(self, item: dict[str, Any]):
        self.item = item
        self.history: list[tuple[str, str]] = []
        self.failed: str | None = None


class StoryTask:
    schema = STORY_SCHEMA

    def __init__(self, ctx: WorkerContext, *, reset: str = "after_chars", temperature: float = 0.0,
                 repetition_penalty: float = 1.0, buffer: int = 0):
        if reset not in ("never", "after_chars", "every_turn"):
            raise ValueError(f"reset policy must be never, after_chars or every_turn, got {reset!r}")
        self.ctx, self.reset_policy = ctx, reset
        self.temperature, self.repetition_penalty, self.buffer = temperature, repetition_penalty, buffer

    def run(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        runs = [_Run(it) for it in items]
        if self.ctx.engine.backend == "vllm":
            groups = [runs]  # lockstep: turn k of every sequence in one batch
        else:
            groups = [[r] for r in runs]  # one sequence at a time keeps its KV prefix
        rows: list[dict[str, Any]] = []
        for group in groups:
            n_turns = max(len(r.item["prompts"]) for r in group)
            for k in range(n_turns):
                rows += self._turn(k, [r for r in group if k < len(r.item["prompts"])])
        return rows

    def _turn(self, k: int, group: list[_Run]) -> list[dict[str, Any]]:
        rows, todo = [], []
        for r in group:
            it, p = r.item, r.item["prompts"][k]
            key = f"{it['key']}/turn{k + 1:02d}"
            base = {"sequence_id": it["sequence_id"], "run": it["run"], "turn": k + 1, "prompt_name": p["name"],
                    "prompt": p["text"]}
            if r.failed:
                rows.append(self._error_row(key, base, r.failed, "skipped_after_failure", it["seed"]))
                continue
            try:
                win = fit_window(self.ctx.engine.tokenizer, system=it.get("system"), history=r.history,
                                 prompt=p["text"], window=self.ctx.engine.context_window,
                                 max_tokens=it["max_tokens"], buffer=self.buffer)
            except BudgetError as e:
                r.failed = f"turn {k + 1} failed: {e}"
                rows.append(self._error_row(key, base, str(e), "prompt_too_long", it["seed"]))
                continue
            if self.reset_policy == "every_turn":
                self.ctx.keeper.reset("policy every_turn", key)
            req = GenerationRequest(messages=win.messages, max_tokens=it["max_tokens"], temperature=self.temperature,
                                    seed=it["seed"] + k, stop=tuple(it.get("stop") or ()),
                                    repetition_penalty=self.repetition_penalty)
            todo.append((r, key, base, win, req))
        outs = self.ctx.generate_many([(key, req, None) for _, key, _, _, req in todo]) if todo else []
        for (r, key, base, win, req), out in zip(todo, outs):
            row = self._row(key, base, win, req, out)
            if out.ok:
                r.history.append((base["prompt"], out.result.text))
            else:
                r.failed = f"turn {k + 1} failed: {out.error}"
            rows.append(row)
        return rows

    def _row(self, key, base, win, req, out: Outcome) -> dict[str, Any]:
        row = self.ctx.common_row(key, out, req.seed)
        row.update(base, response=out.result.text if out.result else None, context_tokens=win.context_tokens,
                   tokens_dropped=win.tokens_dropped, turns_dropped=win.turns_dropped)
        return row

    def _error_row(self, key, base, error, kind, seed) -> dict[str, Any]:
        return {"key": key, "sweep_id": self.ctx.sweep_id, "model": self.ctx.spec.name,
                "backend": self.ctx.spec.backend, "status": "error", "error": error, "error_kind": kind,
                "attempts": 0, "resets": 0, "seed": seed, "worker": self.ctx.worker_id, **base}
