"""The ``generate`` job: chat prompts from a JSONL file, one generation row per prompt and model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from longsweep.config import ModelSpec
from longsweep.errors import ErrorKind, PromptTooLongError
from longsweep.jobs.base import Job, Planned, WorkItem, register_job
from longsweep.results import error_row


class GenerateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_tokens: int | None = Field(None, gt=0, description="Answer length for every prompt (overrides the file).")


@register_job
class GenerateJob(Job):
    name = "generate"
    help = "run chat prompts from a JSONL file through the actor pool"
    table = "generations"
    columns = [("id", pa.string()), ("text", pa.string())]
    Options = GenerateOptions
    llama_batch = 8

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("inputs", metavar="prompts",
                       help="JSONL: {id, messages|prompt, max_tokens?, temperature?, seed?}, or OpenAI Batch lines "
                            "{custom_id, method, url, body}")
        p.add_argument("--max-tokens", type=int, default=None)

    @classmethod
    def overrides(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {"max_tokens": args.max_tokens}

    def check_inputs(self) -> None:
        """The prompts file as a whole, before Ray: unreadable, no lines, repeated ids (exit 2)."""
        from longsweep.jobs.generate.inputs import read_prompts
        read_prompts(Path(self.inputs), max_tokens=self.options.max_tokens)

    def make_items(self, spec: ModelSpec, sweep_id: str) -> Planned:
        """Exact-count every prompt; a bad line and an over-long prompt become error rows before any engine
        sees them, each naming its line and field."""
        from longsweep.budget import check_request
        from longsweep.engines.registry import load_tokenizer
        from longsweep.jobs.generate.inputs import read_prompts
        from longsweep.runtime.plan import item_cost
        from longsweep.tokens import count_messages

        f = read_prompts(Path(self.inputs), max_tokens=self.options.max_tokens)
        row = lambda pid, kind, msg, **kw: error_row(f"{pid}/{spec.name}", kind, msg, sweep_id=sweep_id,  # noqa: E731
                                                     model=spec.name, backend=spec.backend, id=pid, **kw)
        errors = [row(pid, ErrorKind.BAD_INPUT, reason) for pid, reason in f.errors]
        items = []
        tok = load_tokenizer(spec) if f.prompts else None
        for p in f.prompts:
            n = count_messages(tok, p["messages"])
            mt = int(p["sampling"].get("max_tokens", 256))
            try:
                check_request(n, mt, spec.n_ctx)
            except PromptTooLongError as e:
                errors.append(row(p["id"], ErrorKind.PROMPT_TOO_LONG, str(e), prompt_tokens=n))
                continue
            items.append(WorkItem(key=f"{p['id']}/{spec.name}", cost=item_cost(n, mt), payload=p))
        return Planned(items, errors, config={"prompts": self.inputs})

    def task(self, ctx):
        from longsweep.jobs.generate.task import GenerateTask
        return GenerateTask(ctx)
