"""The streaming sweep of prompt-file jobs (generate, echo): the driver's memory does not grow with the file.

``run_stream`` replaces ``make_items`` + ``run_sweep`` for a job with ``window_items`` (jobs/generate,
jobs/echo). The driver holds the file's spans and a bit a line of what is left to run (the scan and the
anti-join of resume: runtime/stream_input.py, in a child process for a big file: runtime/stream_scan.py); the
prompts themselves are read by Ray Data read tasks on the driver's node
(``PromptSource``, one per ~8 MB span of the file or Parquet row group), which skip the lines already done
(the anti-join's mask), decide each line on its own (a bad line is its own error row, written by the task
into the table at once), plan a window of ``WINDOW`` prompts (llama.cpp: longest first, runtime/plan.py; a fed
engine: the file's order, runtime/sweep.py's ``plan_fed``) and hand out blocks of packed batches. One actor pool runs the whole stream; rows land as blocks finish.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator

import pyarrow as pa

from longsweep.config import ModelSpec
from longsweep.errors import ErrorKind
from longsweep.jobs.base import Job
from longsweep.results import error_row, now_iso, to_table
from longsweep.runtime import stream_scan
from longsweep.runtime.stream_input import Span, Todo, span_lines
from longsweep.store import Loc, loc, publish_table, write_manifest

logger = logging.getLogger(__name__)

WINDOW = 4096  # prompts planned together
READERS = 1  # read tasks at once: parsing is Python, and the actors want the cores


def check_prompts(path: str) -> None:
    """The file-wide checks before Ray (exit 2); the scan is kept for the sweep that follows."""
    stream_scan.scan(path)


def prefetch(job: Job, spec: ModelSpec, table_dir: Loc) -> None:
    """The first model's anti-join of a big prompt file started now, while the driver connects to Ray."""
    if getattr(job, "run_streamed", None) is not None:
        stream_scan.prefetch(stream_scan.scan(job.inputs), table_dir, spec.name)


@dataclass
class StreamPlan:
    """What every read task needs: crosses Ray with each task (small: no prompts, no keys)."""

    job: Job
    model: dict[str, Any]
    sweep_id: str
    table_dir: Loc
    path: str
    fmt: str
    batch_items: int
    fed: bool
    n_actors: int
    per_actor: int


def bad_line_row(spec: ModelSpec, sweep_id: str, pid: str, kind: ErrorKind, msg: str, **cols: Any) -> dict[str, Any]:
    return error_row(f"{pid}/{spec.name}", kind, msg, sweep_id=sweep_id, model=spec.name, backend=spec.backend,
                     id=pid, **cols)


def _blocks(sp: StreamPlan, spec: ModelSpec, prompts: list[dict], errors: list[dict], at: int) -> Iterator[pa.Table]:
    """A window's error rows written, its items planned and packed (Ray Data cuts the stream into blocks of
    ``block_bytes``: one actor task each, whose rows land every ``block_bytes`` of output); ``at``: the window's
    first line, so that each batch's place in the plan (``pack_batch``'s order) follows the file."""
    from longsweep.runtime.plan import pack_batches, plan_batches
    from longsweep.runtime.sweep import plan_fed
    items, more = sp.job.window_items(spec, sp.sweep_id, prompts) if prompts else ([], [])
    errors = errors + more
    if errors:
        publish_table(sp.table_dir, to_table(errors, sp.job.schema()), prefix="driver")
    if not items:
        return
    if sp.fed:  # the file's order, as one LLM.generate would take it (runtime/sweep.py: plan_fed)
        batches = plan_fed(items, sp.batch_items)
    else:
        batches = plan_batches(items, max_items=sp.batch_items, n_actors=sp.n_actors, per_actor=sp.per_actor)
    yield pa.table({"items": pa.array(pack_batches(batches, at), pa.string())})


def read_span(sp: StreamPlan, span: Span, bits: bytes) -> Iterator[pa.Table]:
    """One read task: the span's lines not yet done, decided one by one, in planned blocks."""
    from pathlib import Path

    from longsweep.jobs.generate.inputs import parse_line
    todo = Todo.mask(span, bits)
    spec = ModelSpec.model_validate(sp.model)
    name, max_tokens = Path(sp.path).name, getattr(sp.job.options, "max_tokens", None)
    prompts: list[dict] = []
    errors: list[dict] = []
    at = span.first_line
    for n, line in span_lines(sp.path, sp.fmt, span):
        if not todo[n - span.first_line]:
            continue
        pid, prompt, bad = parse_line(line, n, name, max_tokens=max_tokens)
        if prompt is None:
            errors.append(bad_line_row(spec, sp.sweep_id, pid, ErrorKind.BAD_INPUT, bad or ""))
        else:
            prompts.append(prompt)
        if len(prompts) + len(errors) >= WINDOW:
            yield from _blocks(sp, spec, prompts, errors, at)
            prompts, errors, at = [], [], n + 1
    yield from _blocks(sp, spec, prompts, errors, at)


def _read_tasks(sp: StreamPlan, todo: Todo) -> list:
    """One read task per span that holds a line not yet done (a span whose every line is done is not read)."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import ReadTask
    tasks = []
    for span, bits in todo.spans:
        n = int(Todo.mask(span, bits).sum())
        meta = BlockMetadata(num_rows=None, size_bytes=n * 200, input_files=None, exec_stats=None)
        tasks.append(ReadTask(functools.partial(read_span, sp, span, bits), meta,
                              schema=pa.schema([("items", pa.string())])))
    return tasks


def prompt_source(tasks: list):
    """The stream as a Ray Data datasource: its read tasks run on the driver's node, where the file is."""
    from ray.data.datasource import Datasource

    class PromptSource(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            return sum(t.metadata.size_bytes for t in tasks)

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list:
            return tasks

        @property
        def supports_distributed_reads(self) -> bool:
            return False

    return PromptSource()


def run_stream(job: Job, spec: ModelSpec, settings) -> Any:
    """Every prompt of the job's file not yet in the table, streamed through one actor pool; the summary."""
    from longsweep.runtime.sweep import batches_per_actor, feed_settings
    t0 = time.perf_counter()
    sweep_dir, sid = loc(settings.sweep_dir), settings.sweep_id
    table_dir = sweep_dir / job.table
    scan = stream_scan.scan(job.inputs)
    todo = stream_scan.todo(scan, table_dir, spec.name)
    total, n_todo = scan.n_prompts, todo.n_todo
    skipped = total - n_todo
    started = now_iso()
    write_manifest(sweep_dir, sweep_id=sid, job=job.name, model=spec.model_dump(mode="json"),
                   config={**settings.config, "prompts": job.inputs, "options": job.options.model_dump(mode="json")},
                   policy=job.policy().model_dump(mode="json"), started_at=started, planned_items=total,
                   skipped=skipped)
    stopped = None
    if n_todo:
        lo, hi = settings.concurrency
        feed = feed_settings(spec, n_items=n_todo, n_actors=hi)
        batch_items = settings.batch_items or (feed.batch_items if feed else spec.default_batch(job.llama_batch))
        sp = StreamPlan(job, spec.model_dump(mode="json"), sid, table_dir, scan.path, scan.fmt, batch_items,
                        feed is not None, hi, batches_per_actor(spec.backend))
        logger.info("sweep %s: %d prompts to run (%d done before) streamed from %s", sid, n_todo, skipped, scan.path)
        import ray
        tasks = _read_tasks(sp, todo)
        # as many blocks asked for as there are tasks, so that Ray Data splits none of them
        ds = ray.data.read_datasource(prompt_source(tasks), concurrency=min(READERS, len(tasks)), num_cpus=0,
                                      override_num_blocks=len(tasks))
        del todo
        stopped = execute_stream(job, spec, settings, ds, n_rows=n_todo, skipped=skipped, started=started,
                                 in_flight=feed.in_flight if feed else 1)
    from longsweep.runtime.child import in_child
    from longsweep.runtime.stream_summary import summarize_stream
    # a big file's table is counted in a child too: its keys' hashes (16 bytes a row) are not the driver's
    summary = (in_child if scan.kept else _here)(summarize_stream, table_dir, total=total, skipped=skipped,
                                                 ran=n_todo, wall_s=time.perf_counter() - t0, since=started,
                                                 model=spec.name)
    from longsweep.runtime.sweep import finish_summary
    return finish_summary(summary, stopped, job=job, spec=spec, sweep_dir=sweep_dir, sweep_id=sid, started=started)


def _here(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def execute_stream(job: Job, spec: ModelSpec, settings, ds, *, n_rows: int, skipped: int, started: str,
                   in_flight: int) -> str | None:
    """The actor pool over the stream (runtime/sweep.py's ``run_pool``, as for a list); why it stopped early."""
    from longsweep.runtime import sweep as sw
    # this dataset's context (map_batches copies it on): grow the pool as soon as every actor is busy, and
    # blocks of the job's size, in and out; Ray Data's default (128 MiB) would make a read task's whole span
    # one actor task and its rows one file written at the task's end
    ds.context.autoscaling_config.actor_pool_util_upscaling_threshold = 1.0
    # a fed engine (vLLM, a server): one planned batch a block, as from_items gives it (16 in flight per actor)
    ds.context.target_max_block_size = 1 if in_flight > 1 else job.stream_block_bytes
    sw.silence_remote_args_fn_deprecation()
    return sw.run_pool(job, spec, settings, ds, loc(settings.sweep_dir) / job.table, in_flight=in_flight,
                       n_rows=n_rows, already=skipped, n_fresh=0, started=started)
