"""The story sweep: sequences x runs x models -> one row per turn.

Items are whole (sequence, run) pairs, sharded across actors by predicted cost
(prompt tokens + turns x max_tokens); keys of rows are
``<sequence>/run<k>/<model>/turn<NN>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.runtime.plan import item_cost
from longsweep.runtime.error_budget import ErrorBudget
from longsweep.runtime.sweep import SweepSummary, run_sweep
from longsweep.stories.sequences import load_sequences


class StoryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: int = Field(1, ge=1)
    max_tokens: int | None = Field(None, gt=0, description="Answer length (default: the model's llama_cpp.max_tokens or completion_reserve).")
    temperature: float = Field(0.0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0)
    seed: int = Field(0, ge=0)
    reset: str = Field("after_chars", pattern="^(never|after_chars|every_turn)$")
    reset_after_chars: int = Field(5000, gt=0, description="The story seed's 5,000 characters.")
    min_chars: int = Field(10, ge=0, description="A shorter answer is retried with a reset in between.")
    max_retries: int = Field(2, ge=0)
    buffer: int = Field(0, ge=0, description="Tokens kept free beside max_tokens.")
    stop: list[str] = Field(default_factory=list)


def story_items(path: str | Path, spec: ModelSpec, opts: StoryOptions, sweep_id: str) -> tuple[list[dict], list[dict]]:
    loaded = load_sequences(path)
    max_tokens = opts.max_tokens or spec.llama_cpp.max_tokens or spec.completion_reserve
    items, errors = [], []
    for seq in loaded.sequences:
        chars = sum(len(p.text) for p in seq.prompts) + len(seq.system or "")
        for k in range(1, opts.runs + 1):
            items.append({
                "key": f"{seq.id}/run{k}/{spec.name}", "group": seq.id, "sequence_id": seq.id, "run": k,
                "system": seq.system,
                "prompts": [{"name": p.name, "text": p.text} for p in seq.prompts], "max_tokens": max_tokens,
                "seed": opts.seed + 1000 * k, "stop": list(seq.stop) or opts.stop,
                "cost": item_cost(chars // 3, len(seq.prompts) * max_tokens), "n_rows": len(seq.prompts),
            })
    for sid, reason in loaded.errors:
        for k in range(1, opts.runs + 1):
            errors.append({"key": f"{sid}/run{k}/{spec.name}/turn00", "sweep_id": sweep_id, "sequence_id": sid,
                           "run": k, "turn": 0, "model": spec.name, "backend": spec.backend, "status": "error",
                           "error": reason, "error_kind": "bad_input", "attempts": 0, "resets": 0})
    return items, errors


def run_stories(path: str | Path, *, spec: ModelSpec, sweep_dir: Path, sweep_id: str, opts: StoryOptions,
                concurrency: tuple[int, int] = (1, 1), batch_items: int = 1,
                budget: ErrorBudget | None = None) -> SweepSummary:
    items, errors = story_items(path, spec, opts, sweep_id)
    policy = WorkerPolicy(min_chars=opts.min_chars, max_retries=opts.max_retries,
                          reset_after_chars=opts.reset_after_chars if opts.reset == "after_chars" else None)
    options: dict[str, Any] = {"reset": opts.reset, "temperature": opts.temperature,
                               "repetition_penalty": opts.repetition_penalty, "buffer": opts.buffer}
    s = run_sweep(items, spec=spec, task="story", table="stories", sweep_dir=sweep_dir, sweep_id=sweep_id,
                  policy=policy, concurrency=concurrency, batch_items=batch_items, options=options,
                  error_rows=errors, config={"sequences": str(path), "stories": opts.model_dump()},
                  multi_row=True, budget=budget)
    return s
