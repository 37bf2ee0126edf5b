"""The ``stories`` job: sequences x runs x models -> one row per turn.

An item is a whole (sequence, run), sharded across actors by predicted cost (prompt tokens + turns x
max_tokens); its rows are keyed ``<sequence>/run<k>/<model>/turn<NN>`` with the item's key in ``item_key``.
"""

from __future__ import annotations

import argparse
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.errors import ErrorKind
from longsweep.jobs.base import Job, Planned, WorkItem, register_job
from longsweep.results import error_row

_S, _I = pa.string(), pa.int64()


class StoryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: int = Field(1, ge=1)
    max_tokens: int | None = Field(None, gt=0, description="Answer length (default: the model's llama_cpp.max_tokens "
                                                           "on llama.cpp, else its completion_reserve).")
    temperature: float = Field(0.0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0)
    seed: int = Field(0, ge=0)
    reset: str = Field("after_chars", pattern="^(never|after_chars|every_turn)$")
    reset_after_chars: int = Field(5000, gt=0, description="The story seed's 5,000 characters.")
    min_chars: int = Field(10, ge=0, description="A shorter answer is retried with a reset in between.")
    max_retries: int = Field(2, ge=0)
    buffer: int = Field(0, ge=0, description="Tokens kept free beside max_tokens.")
    stop: list[str] = Field(default_factory=list)


@register_job
class StoriesJob(Job):
    name = "stories"
    help = "story sequences: multi-turn generation on Ray actors, one row per turn"
    table = "stories"
    columns = [("sequence_id", _S), ("run", _I), ("turn", _I), ("prompt_name", _S), ("prompt", _S),
               ("response", _S), ("context_tokens", _I), ("tokens_dropped", _I), ("turns_dropped", _I)]
    Options = StoryOptions
    options_file = "stories.yaml"
    llama_batch = 1  # one sequence per batch: its turns reuse the KV prefix of the earlier ones

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("inputs", metavar="sequences", help="YAML (ours) or JSON (story seed format)")
        p.add_argument("--runs", type=int, default=None)
        p.add_argument("--max-tokens", type=int, default=None)
        p.add_argument("--reset", choices=["never", "after_chars", "every_turn"], default=None)

    @classmethod
    def overrides(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {"runs": args.runs, "max_tokens": args.max_tokens, "reset": args.reset}

    def check_inputs(self) -> None:
        from longsweep.stories.sequences import load_sequences
        load_sequences(self.inputs)  # no sequences, repeated ids, an unreadable file: refused before Ray

    def default_policy(self) -> WorkerPolicy:
        o: StoryOptions = self.options
        return WorkerPolicy(min_chars=o.min_chars, max_retries=o.max_retries,
                            reset_after_chars=o.reset_after_chars if o.reset == "after_chars" else None)

    def max_tokens(self, spec: ModelSpec) -> int:
        llama = spec.llama_cpp.max_tokens if spec.backend == "llama_cpp" else None
        return self.options.max_tokens or llama or spec.completion_reserve

    def make_items(self, spec: ModelSpec, sweep_id: str) -> Planned:
        from longsweep.runtime.plan import item_cost
        from longsweep.stories.sequences import load_sequences
        opts: StoryOptions = self.options
        loaded = load_sequences(self.inputs)
        max_tokens = self.max_tokens(spec)
        items, errors = [], []
        for seq in loaded.sequences:
            chars = sum(len(p.text) for p in seq.prompts) + len(seq.system or "")
            for k in range(1, opts.runs + 1):
                payload = {"sequence_id": seq.id, "run": k, "system": seq.system,
                           "prompts": [{"name": p.name, "text": p.text} for p in seq.prompts],
                           "max_tokens": max_tokens, "seed": opts.seed + 1000 * k, "stop": list(seq.stop) or opts.stop}
                items.append(WorkItem(key=f"{seq.id}/run{k}/{spec.name}", group=seq.id, payload=payload,
                                      cost=item_cost(chars // 3, len(seq.prompts) * max_tokens),
                                      n_rows=len(seq.prompts)))
        for sid, reason in loaded.errors:
            for k in range(1, opts.runs + 1):
                ik = f"{sid}/run{k}/{spec.name}"
                errors.append(error_row(f"{ik}/turn00", ErrorKind.BAD_INPUT, reason, sweep_id=sweep_id,
                                        model=spec.name, backend=spec.backend, item_key=ik, sequence_id=sid,
                                        run=k, turn=0))
        return Planned(items, errors, config={"sequences": self.inputs})

    def item_done(self, item: WorkItem, done: dict[str, int]) -> bool:
        """Done when every turn is written; a partly written item resumes at its first missing turn."""
        return done.get(item.key, 0) >= item.n_rows

    def task(self, ctx):
        from longsweep.jobs.stories.task import StoryTask
        return StoryTask(ctx, self.options)
