"""Worker side of the stories job: whole sequences, turn by turn, one row per turn, written as turns finish.

Each (sequence, run) advances on its own: its next turn is asked the moment its previous answer is
accepted. On a fed engine (vLLM, a server) every sequence of every batch in flight runs at once, so
the engine's running set stays full; on llama.cpp an actor runs one sequence at a time so the KV prefix
of the earlier turns is reused (only the new prompt is prefilled). Rows go to the table through the
worker's sink in small buffered flushes, so a long sequence is checkpointed turn by turn; a resumed item
starts at its first missing turn with its history rebuilt from the rows. Reset policy: ``never``,
``after_chars`` (an answer longer than ``reset_after_chars``) or ``every_turn``; a failure always resets.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict

from longsweep.engines.base import GenerationRequest
from longsweep.errors import BudgetError, EngineDeadError, EngineLoadError, ErrorKind, FatalEngineError
from longsweep.jobs.base import WorkItem
from longsweep.results import clean_text, storable_row
from longsweep.runtime.context import WorkerContext
from longsweep.runtime.retry import Outcome
from longsweep.stories.window import fit_window


class StoryPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sequence_id: str
    run: int
    system: str | None = None
    prompts: list[dict[str, str]]
    max_tokens: int
    seed: int
    stop: list[str] = []


class StoryTask:
    def __init__(self, ctx: WorkerContext, opts):
        self.ctx, self.reset_policy = ctx, opts.reset
        self.temperature, self.repetition_penalty, self.buffer = opts.temperature, opts.repetition_penalty, opts.buffer

    async def run(self, items: list[WorkItem]) -> list[dict[str, Any]]:
        if self.ctx.engine.feeds:  # every sequence at once, each advancing on its own
            await asyncio.gather(*(self._sequence(it) for it in items))
        else:  # one sequence at a time: its turns reuse the engine's KV prefix
            for it in items:
                await self._sequence(it)
        return []  # the rows went to the table through the sink, turn by turn

    async def _sequence(self, item: WorkItem) -> None:
        p = StoryPayload.model_validate(item.payload)
        history, failed, start = self._resume(item.key, len(p.prompts))
        for k in range(start, len(p.prompts)):
            try:
                row, answer, failed = await self._turn(item.key, p, k, history, failed)
            except (EngineDeadError, EngineLoadError, FatalEngineError):
                raise
            except Exception as e:  # noqa: BLE001 - this turn's data broke the code: its row, not the batch's end
                why = f"the job failed on this turn: {type(e).__name__}: {clean_text(str(e))[:500]}"
                row = self._error_row(f"{item.key}/turn{k + 1:02d}", self._base(item.key, p, k), why,
                                      ErrorKind.ITEM_FAILED, p.seed)
                answer, failed = None, f"turn {k + 1} failed: {why}"
            if self.ctx.sink is not None:  # a turn the table cannot hold is a failed turn: the story stops here
                row = storable_row(row, self.ctx.sink.schema)
                if row["status"] == "error" and answer is not None:
                    answer, failed = None, f"turn {k + 1} failed: {row['error']}"
            if answer is not None:
                history.append((p.prompts[k]["text"], answer))
            self.ctx.sink.add([row])

    def _resume(self, item_key: str, n_turns: int) -> tuple[list[tuple[str, str]], str | None, int]:
        """History, failure and first turn to run, rebuilt from the turns this item already has on disk."""
        done = self.ctx.sink.existing(item_key, ("turn", "status", "prompt", "response", "error")) \
            if self.ctx.sink is not None else []
        history: list[tuple[str, str]] = []
        failed: str | None = None
        turns = {r["turn"]: r for r in done}
        start = 0
        while start < n_turns and (start + 1) in turns:
            r = turns[start + 1]
            if r["status"] == "ok" and not failed:
                history.append((r["prompt"], r["response"]))
            else:
                failed = failed or f"turn {start + 1} failed: {r['error']}"
            start += 1
        return history, failed, start

    async def _turn(self, item_key: str, p: StoryPayload, k: int, history, failed):
        """One turn: (row, accepted answer or None, why later turns are skipped or None)."""
        prompt = p.prompts[k]
        key = f"{item_key}/turn{k + 1:02d}"
        base = self._base(item_key, p, k)
        if failed:
            return self._error_row(key, base, failed, ErrorKind.SKIPPED_AFTER_FAILURE, p.seed), None, failed
        try:
            win = fit_window(self.ctx.engine.tokenizer, system=p.system, history=history, prompt=prompt["text"],
                             window=self.ctx.engine.context_window, max_tokens=p.max_tokens, buffer=self.buffer)
        except BudgetError as e:
            return (self._error_row(key, base, str(e), ErrorKind.PROMPT_TOO_LONG, p.seed), None,
                    f"turn {k + 1} failed: {e}")
        if self.reset_policy == "every_turn":
            self.ctx.keeper.reset("policy every_turn", key)
        req = GenerationRequest(messages=win.messages, max_tokens=p.max_tokens, temperature=self.temperature,
                                seed=p.seed + k, stop=tuple(p.stop), repetition_penalty=self.repetition_penalty)
        (out,) = await self.ctx.generate_many([(key, req, None)])
        row = self._row(key, base, win, req, out)
        if out.ok:
            return row, out.result.text, None  # type: ignore[union-attr]
        return row, None, f"turn {k + 1} failed: {out.error}"

    @staticmethod
    def _base(item_key: str, p: StoryPayload, k: int) -> dict[str, Any]:
        prompt = p.prompts[k]
        return {"item_key": item_key, "sequence_id": p.sequence_id, "run": p.run, "turn": k + 1,
                "prompt_name": prompt["name"], "prompt": prompt["text"]}

    def _row(self, key, base, win, req, out: Outcome) -> dict[str, Any]:
        row = self.ctx.outcome_row(key, out, req.seed)
        row.update(base, response=out.result.text if out.result else None, context_tokens=win.context_tokens,
                   tokens_dropped=win.tokens_dropped, turns_dropped=win.turns_dropped)
        return row

    def _error_row(self, key, base, error, kind: ErrorKind, seed) -> dict[str, Any]:
        return self.ctx.error_row(key, kind, error, seed=seed, **base)
