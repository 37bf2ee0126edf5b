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


_TOKENIZERS: dict[str, Any] = {}


def _tokenizer(spec: ModelSpec) -> Any:
    """The model's tokenizer, loaded once per process (a read task's worker plans many windows)."""
    key = spec.model_dump_json()
    if key not in _TOKENIZERS:
        from longsweep.engines.registry import load_tokenizer
        _TOKENIZERS.clear()
        _TOKENIZERS[key] = load_tokenizer(spec)
    return _TOKENIZERS[key]


@register_job
class GenerateJob(Job):
    name = "generate"
    help = "run chat prompts from a JSONL (or Parquet) file through the actor pool"
    table = "generations"
    columns = [("id", pa.string()), ("text", pa.string())]
    Options = GenerateOptions
    llama_batch = 8

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("inputs", metavar="prompts",
                       help="JSONL: {id, messages|prompt, max_tokens?, temperature?, seed?}, or OpenAI Batch lines "
                            "{custom_id, method, url, body}; or Parquet with the same columns")
        p.add_argument("--max-tokens", type=int, default=None)

    @classmethod
    def overrides(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {"max_tokens": args.max_tokens}

    def check_inputs(self) -> None:
        """The prompts file as a whole, before Ray: unreadable, no lines, repeated ids (exit 2); one pass that
        hashes each line's id for the streamed sweep (runtime/stream.py, runtime/stream_scan.py)."""
        from longsweep.runtime.stream import check_prompts
        check_prompts(self.inputs)

    stream_block_bytes = 1  # one planned batch a block: its rows land as it finishes (a model takes seconds an item)

    def window_items(self, spec: ModelSpec, sweep_id: str, prompts: list[dict[str, Any]]
                     ) -> tuple[list[WorkItem], list[dict[str, Any]]]:
        """One window of the stream (a read task's): exact counts, an over-long prompt an error row."""
        from longsweep.budget import check_request
        from longsweep.runtime.plan import item_cost
        from longsweep.runtime.stream import bad_line_row
        from longsweep.tokens import count_messages

        tok, items, errors = _tokenizer(spec), [], []
        for p in prompts:
            n = count_messages(tok, p["messages"])
            mt = int(p["sampling"].get("max_tokens", 256))
            try:
                check_request(n, mt, spec.n_ctx)
            except PromptTooLongError as e:
                errors.append(bad_line_row(spec, sweep_id, p["id"], ErrorKind.PROMPT_TOO_LONG, str(e), prompt_tokens=n))
                continue
            items.append(WorkItem(key=f"{p['id']}/{spec.name}", cost=item_cost(n, mt), payload=p))
        return items, errors

    def run_streamed(self, spec: ModelSpec, settings: Any) -> Any:
        """The sweep of this model, the file streamed (runtime/stream.py), instead of make_items + run_sweep."""
        from longsweep.runtime.stream import run_stream
        return run_stream(self, spec, settings)

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
