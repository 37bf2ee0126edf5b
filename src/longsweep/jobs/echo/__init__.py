"""The ``echo`` job: the smallest complete job, and the example docs/ARCHITECTURE.md walks through.

Each prompt of a JSONL file (the ``generate`` format) comes back as a row with its token count, counted
on the worker by the engine's own tokenizer after the chat template; no text is generated. Adding it took
this package and one line in ``longsweep/jobs/__init__.py``. The file is streamed as ``generate``'s is
(runtime/stream.py): a bad line is its own ``bad_input`` error row naming the line and the field.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from longsweep.config import ModelSpec
from longsweep.jobs.base import Job, Planned, WorkItem, register_job


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EchoTask:
    def __init__(self, ctx):
        self.ctx = ctx

    async def run(self, items: list[WorkItem]) -> list[dict[str, Any]]:
        tok = self.ctx.engine.tokenizer
        return [self.ctx.ok_row(it.key, id=it.payload["id"], prompt_tokens=len(tok.encode_messages(it.payload["messages"])))
                for it in items]


@register_job
class EchoJob(Job):
    name = "echo"
    help = "count each prompt's tokens on the workers (a toy job: the example of adding one)"
    table = "echoes"
    columns = [("id", pa.string())]
    Options = EchoOptions

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("inputs", metavar="prompts", help="JSONL or Parquet, as for `generate`")

    stream_block_bytes = 512 << 10  # a block of the stream, in and out (~1,300 prompts: a count is quick)

    def check_inputs(self) -> None:
        from longsweep.runtime.stream import check_prompts
        check_prompts(self.inputs)

    def window_items(self, spec: ModelSpec, sweep_id: str, prompts: list[dict[str, Any]]
                     ) -> tuple[list[WorkItem], list[dict[str, Any]]]:
        return [WorkItem(key=f"{p['id']}/{spec.name}", cost=1.0, payload=p) for p in prompts], []

    def run_streamed(self, spec: ModelSpec, settings: Any) -> Any:
        """The sweep of this model, the file streamed (runtime/stream.py), instead of make_items + run_sweep."""
        from longsweep.runtime.stream import run_stream
        return run_stream(self, spec, settings)

    def make_items(self, spec: ModelSpec, sweep_id: str) -> Planned:
        from longsweep.jobs.generate.inputs import load_prompts
        prompts = load_prompts(Path(self.inputs), max_tokens=None)
        return Planned([WorkItem(key=f"{p['id']}/{spec.name}", cost=1.0, payload=p) for p in prompts])

    def task(self, ctx):
        return EchoTask(ctx)
