"""The sweep driver: skip what is done, plan batches, run the actor pool, write Parquet.

Used by every job through the ``Job`` contract (jobs/base.py). Items are ``WorkItem``s with a stable
``key`` and a predicted ``cost``; rows already known to be errors before any
model runs (a corrupt PDF) are written directly, so they too appear exactly once.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from longsweep.config import ModelSpec
from longsweep.errors import FatalError
from longsweep.jobs.base import Job, Planned, WorkItem
from longsweep.kvfit import PrefixHit, prefix_hit
from longsweep.store.retried import begin_retry
from longsweep.results import now_iso, to_table
from longsweep.store import Loc, done_items, loc, publish_table, read_table, write_manifest
from longsweep.runtime import engine_stats
from longsweep.runtime.error_limit import ErrorLimit
from longsweep.runtime.placement import OrphanSweeper, actor_env, actor_resources, actor_secret, remote_args_fn
from longsweep.runtime.plan import batches_per_actor, pack_batches, plan_batches

logger = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    sweep_dir: Loc
    table_dir: Loc
    total: int
    skipped: int
    ran: int
    rows: int = 0
    ok: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    completion_tokens: int = 0
    stopped: str | None = None  # why the sweep stopped early (error limit), None when it ran to the end
    prefix_cache: dict[str, Any] | None = None  # kvfit.PrefixHit.as_dict() of the ok rows; None: not reported
    engine: dict[str, Any] | None = None  # the workers' own counts (runtime/engine_stats.py): preemptions
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(self.errors_by_kind.items())) or "none"
        return [
            f"results: {self.table_dir}",
            f"items: {self.total} ({self.skipped} already done, {self.ran} run now); rows: {self.rows}",
            f"ok: {self.ok}  errors: {self.errors} ({kinds})",
        ] + ([f"STOPPED EARLY: {self.stopped}; rerun with --resume to go on"] if self.stopped else []) + [
            f"wall: {self.wall_s:.1f}s  completion tokens this run: {self.completion_tokens}"
            f"  ({self.tokens_per_s:.1f} tok/s)",
        ] + [prefix_cache_line(self.prefix_cache)] + ([e] if (e := engine_stats.line(self.engine)) else []) + [
            f"{k}: {v}" for k, v in self.extra.items()]


@dataclass
class RunSettings:
    """How to run a job, the same for every model of a command: where rows go and the pool's shape."""

    sweep_dir: Loc | Path | str  # a local folder or an object-store URI (store/)
    sweep_id: str
    concurrency: tuple[int, int] = (1, 1)
    batch_items: int | None = None  # None: the model's default (ModelSpec.default_batch)
    limit: ErrorLimit = field(default_factory=ErrorLimit)
    config: dict[str, Any] = field(default_factory=dict)  # what the manifest records of the command
    wait_for_resources: float | None = None  # seconds to wait for a node that can hold an actor (None: default)


def write_rows_direct(table_dir: Loc, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    """Rows decided on the driver (per-item errors before any model ran)."""
    if rows:
        publish_table(table_dir, to_table(rows, schema), prefix="driver")


def run_job(job: Job, specs: list[ModelSpec], settings: RunSettings) -> list[SweepSummary]:
    """The one loop over models of every sweep command. Several models run at the same time, each with
    its own actor pool, as far as the cluster's resources allow (Ray queues the actors that do not fit
    yet); each writes its own rows into the one table. Summaries come back in the order of ``specs``."""
    if len(specs) == 1:
        return [_plan_and_run(job, specs[0], settings)]
    from longsweep.runtime.several import run_each
    return run_each(lambda spec: _plan_and_run(job, spec, settings), specs)


def _plan_and_run(job: Job, spec: ModelSpec, settings: RunSettings) -> SweepSummary:
    from longsweep.runtime.signals import interruptible
    with interruptible():  # a signal during one model's sweep in a thread interrupts that thread too
        streamed = getattr(job, "run_streamed", None)  # a prompt file, streamed (generate, echo): runtime/stream.py
        if streamed is not None:
            return streamed(spec, settings)
        planned = job.make_items(spec, settings.sweep_id)
        s = run_sweep(job, spec, planned, settings)
    s.extra.update(planned.extra)
    return s


def run_sweep(job: Job, spec: ModelSpec, planned: Planned, settings: RunSettings) -> SweepSummary:
    """Run every item of ``planned`` not yet in ``<sweep_dir>/<job.table>``; return the counts."""
    t0 = time.perf_counter()
    sweep_dir, sid = loc(settings.sweep_dir), settings.sweep_id
    table_dir = sweep_dir / job.table
    items, error_rows = planned.items, planned.error_rows
    dup = [k for k, n in Counter([it.key for it in items] + [r["key"] for r in error_rows]).items() if n > 1]
    if dup:
        raise ValueError(f"duplicate work item keys: {dup[:5]}")
    done = done_items(table_dir)
    retry = begin_retry(job, sweep_dir, planned, done)  # --retry-errors: error rows count as not done
    if retry is not None:
        done = retry.done
    todo = [it for it in items if not job.item_done(it, done)]
    fresh_errors = [r for r in error_rows if (r.get("item_key") or r["key"]) not in done]
    skipped = len(items) + len(error_rows) - len(todo) - len(fresh_errors)
    started = now_iso()
    policy = job.policy()
    write_manifest(sweep_dir, sweep_id=sid, job=job.name, model=spec.model_dump(mode="json"),
                   config={**settings.config, **planned.config, "options": job.options.model_dump(mode="json")},
                   policy=policy.model_dump(mode="json"), started_at=started,
                   planned_items=len(items) + len(error_rows), skipped=skipped)
    write_rows_direct(table_dir, fresh_errors, job.schema())
    n_rows = sum(it.n_rows for it in todo) + len(fresh_errors)
    stopped = settings.limit.exceeded(rows=len(fresh_errors), errors=len(fresh_errors), total=n_rows)
    if todo and not stopped:
        stopped = _execute(job, spec, todo, settings, table_dir, n_rows=n_rows, n_fresh=len(fresh_errors),
                           already=set(done), started=started)
    if retry is not None:
        # the replaced error rows leave the table once their new rows are written
        retry.finish(sid, model_name=spec.name)
    summary = summarize(table_dir, total=len(items) + len(error_rows), skipped=skipped,
                        ran=len(todo) + len(fresh_errors), wall_s=time.perf_counter() - t0, since=started,
                        model=spec.name)
    return finish_summary(summary, stopped, job=job, spec=spec, sweep_dir=sweep_dir, sweep_id=sid, started=started)


def finish_summary(summary: SweepSummary, stopped: str | None, *, job: Job, spec: ModelSpec, sweep_dir: Loc,
                   sweep_id: str, started: str) -> SweepSummary:
    """The model's counts into its summary and the manifest (a list's sweep or a stream's)."""
    summary.stopped = stopped
    counts = {"rows": summary.rows, "ok": summary.ok, "error": summary.errors, "errors_by_kind": summary.errors_by_kind,
              "prefix_cache": summary.prefix_cache, "engine": summary.engine}
    write_manifest(sweep_dir, sweep_id=sweep_id, job=job.name, started_at=started, finished_at=now_iso(),
                   model_name=spec.name, stopped=stopped, counts=counts)
    return summary


def silence_remote_args_fn_deprecation() -> None:
    """Ray 2.60 deprecates ``ray_remote_args_fn`` (and ``**ray_remote_args``: "use the named remote parameters")
    but has no named parameter for what it gives: ``max_restarts``/``max_task_retries`` and a placement group
    per actor (a model on several GPUs); Ray's own vLLM batch stage still passes it. Silenced for this module's
    call only (its message, this module), after ``import ray`` whose own warning filters would come first."""
    warnings.filterwarnings("ignore", message="`ray_remote_args_fn` is deprecated", module=__name__)


def _execute(job: Job, spec: ModelSpec, todo: list[WorkItem], settings: RunSettings, table_dir: Loc, *,
             n_rows: int, n_fresh: int, already: set[str], started: str) -> str | None:
    """The actor pool over the planned batches; returns why it stopped early, or None."""
    import ray

    lo, hi = settings.concurrency
    feed = feed_settings(spec, n_items=len(todo), n_actors=hi)
    if feed:  # a fed engine runs a batch's items side by side, not in turn
        batch_items, in_flight = settings.batch_items or feed.batch_items, feed.in_flight
        batches = plan_fed(todo, batch_items)
    else:  # cost-balanced batches for an engine that runs a batch's items one after another
        batch_items, in_flight = settings.batch_items or spec.default_batch(job.llama_batch), 1
        batches = plan_batches(todo, max_items=batch_items, n_actors=hi, per_actor=batches_per_actor(spec.backend))
    logger.info("sweep %s: %d items to run in %d batches of <= %d items, %d in flight per actor",
                settings.sweep_id, len(todo), len(batches), batch_items, in_flight)
    # Ray Data grows an actor pool when in-flight tasks / actors >= this threshold (default 1.75): grow as
    # soon as every actor is busy.
    ray.data.DataContext.get_current().autoscaling_config.actor_pool_util_upscaling_threshold = 1.0
    silence_remote_args_fn_deprecation()
    # from_items puts each block in the object store (~3 ms each): cap the blocks so that 100,000 items start
    # within seconds; a block then holds several batches, and rows land once per block's task
    ds = ray.data.from_items([{"items": blob} for blob in pack_batches(batches)],
                             override_num_blocks=min(len(batches), MAX_BLOCKS))
    return run_pool(job, spec, settings, ds, table_dir, in_flight=in_flight, n_rows=n_rows, already=already,
                    n_fresh=n_fresh, started=started)


def run_pool(job: Job, spec: ModelSpec, settings: RunSettings, ds: Any, table_dir: Loc, *, in_flight: int,
             n_rows: int, already: set[str] | int, n_fresh: int, started: str) -> str | None:
    """The model's actor pool over ``ds`` (one planned batch a row: a list's, or a stream's, runtime/stream.py),
    its rows written into ``table_dir`` as batches finish; returns why it stopped early, or None."""
    import ray
    from longsweep.runtime.feasibility import ResourceWait
    from longsweep.runtime.progress import Progress
    ds = ds.map_batches(
        _worker_cls(),
        batch_size=1,
        # an actor pool that starts with what is there and grows to `max` as nodes join; a fed engine
        # gets several batches at once, so the next batch's items join its running set before the
        # current batch's longest answer ends
        compute=ray.data.ActorPoolStrategy(min_size=settings.concurrency[0], max_size=settings.concurrency[1],
                                           max_tasks_in_flight_per_actor=in_flight,
                                           max_concurrent_calls_per_actor=in_flight),
        fn_constructor_kwargs=dict(job=job, model=spec.model_dump(mode="json"), sweep_id=settings.sweep_id,
                                   table_dir=table_dir, api_key=actor_secret(spec)),
        # per-actor resources from the model registry; a model across N GPUs gets a placement group of N
        **{k: v for k, v in actor_resources(spec).items() if v is not None},
        **actor_env(spec),
        ray_remote_args_fn=(remote_args := remote_args_fn(spec)),
    )
    progress = Progress(table_dir, total=n_rows, already=already, limit=settings.limit,
                        waiter=ResourceWait(spec, settings.wait_for_resources), model=spec.name)
    progress.done = progress.errors = n_fresh  # driver-side error rows count against the limit too
    # Ray Data removes an output folder it created itself when its write got no rows, which would take the
    # rows workers write through their sinks with it: the folder exists before the write starts, and on an
    # object store (no folders: nothing to create) Ray Data is told not to create one (try_create_dir).
    table_dir.mkdir()
    try:
        with progress, OrphanSweeper(remote_args):
            # writes ask for no CPU: the actors may hold every CPU, and rows must land as batches finish
            # and at most WRITERS at once: a write asks for no CPU, so without a cap Ray runs one per finished
            # block at once and starts a worker process for each (12 for 64 small blocks on 2 cores)
            ds.write_parquet(table_dir.path, filesystem=table_dir.fs, try_create_dir=table_dir.local,
                             ray_remote_args={"num_cpus": 0}, concurrency=WRITERS)
    except KeyboardInterrupt:
        if progress.fatal:  # no node that can hold one actor joined within --wait-for-resources
            write_manifest(settings.sweep_dir, sweep_id=settings.sweep_id, job=job.name, started_at=started,
                           finished_at=now_iso(), model_name=spec.name, fatal=progress.fatal)
            raise FatalError(progress.fatal) from None
        if progress.stop_reason is None:
            raise  # SIGINT / SIGTERM (runtime/signals.py): commands.cmd_sweep records it
    except Exception as e:  # noqa: BLE001 - Ray Data fails the whole execution when actors cannot start
        msg = fatal_message(spec, e)
        write_manifest(settings.sweep_dir, sweep_id=settings.sweep_id, job=job.name, started_at=started,
                       finished_at=now_iso(), model_name=spec.name, fatal=msg)
        raise FatalError(msg) from e
    finally:
        remote_args.release()  # no placement group outlives its model's sweep
    return progress.stop_reason


MAX_BLOCKS = 2000  # input blocks of one sweep's dataset
WRITERS = 2  # Parquet write tasks of one sweep at once


@dataclass(frozen=True)
class FeedSettings:
    batch_items: int  # items per planned batch
    in_flight: int  # batches in flight per actor


IN_FLIGHT = 16  # batches in flight per actor of a fed engine


def feed_for(seqs: int, *, n_items: int, n_actors: int) -> FeedSettings:
    """Batches of a quarter of the engine's running set (``seqs``), 16 in flight: four running sets
    queued per actor, so a batch held by one long answer never leaves the engine short (bench/sched_sim.py:
    8 in flight gave 0.76 occupancy on 10,000 reviews, 16 gave 0.99). A sweep too small to give each actor
    four batches gets smaller batches, so every actor gets work."""
    per_actor = -(-n_items // max(1, 4 * n_actors))
    return FeedSettings(batch_items=max(1, min(-(-seqs // 4), per_actor)), in_flight=IN_FLIGHT)


def plan_fed(items: list, batch_items: int) -> list[list]:
    """A fed engine's batches: the job's order, equal item counts, no cost cap (the cap balances an engine
    that runs a batch's items in turn; here it would make batches of one long item and leave the running set
    short). Items of one ``group`` are put together where the job listed them apart (the place of its first
    item), and groups whose items take more turns (``n_rows``: a story's) go first, stably: a turn waits for
    the one before it, so the longest chains start first; items of one turn each keep the job's order.

    Not longest prompt first: the engine's own scheduler packs the running set, and a prompt's length says
    little about how long its item runs. In the KV-bound regime the engine's FCFS over the job's order is
    what a bare ``LLM.generate`` does (bench/kv_gpu.py: the same tokens/s); longest first was 0.55% slower to
    0.24% faster over five workloads, slower in four. A generate file's identical prompts of different
    ``max_tokens`` also stay next to each other, so later ones take the first one's cached blocks.
    ``items``: WorkItems, or dicts with ``key`` and ``cost`` (bench/kv_gpu.py, bench/sched_sim.py replay it)."""
    groups: dict[Any, list] = {}
    for i, it in enumerate(items):
        groups.setdefault(_field(it, "group") or ("_", i), []).append(it)
    ranked = sorted(groups.values(), key=lambda g: -max(int(_field(it, "n_rows") or 1) for it in g))
    ordered = [it for g in ranked for it in g]
    n = max(1, batch_items)
    return [ordered[i:i + n] for i in range(0, len(ordered), n)]


def _field(it: Any, name: str) -> Any:
    return it.get(name) if isinstance(it, dict) else getattr(it, name, None)


def feed_settings(spec: ModelSpec, *, n_items: int, n_actors: int) -> FeedSettings | None:
    """How to keep a fed engine full (``feed_for``); None for an engine that runs one sequence at a
    time (llama.cpp)."""
    if spec.backend == "vllm":
        seqs = spec.vllm.max_num_seqs or 256  # vLLM's default on GPUs
    elif spec.backend == "openai":
        seqs = spec.openai.max_in_flight
    else:
        return None
    return feed_for(seqs, n_items=n_items, n_actors=n_actors)


def fatal_message(spec: ModelSpec, e: BaseException) -> str:
    """One clear sentence from a failed execution: the root cause, not Ray's traceback."""
    import re
    text = str(e)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # the root cause is the last "SomeError: message" line of the remote traceback
    causes = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception): ", ln)]
    load = [ln for ln in causes if "EngineLoadError: " in ln or "FatalEngineError: " in ln]
    cause = (load or causes or lines or [type(e).__name__])[-1]
    what = "the model workers could not start" if "init" in text or "EngineLoadError" in text else "the sweep failed"
    return (f"{what} ({spec.name}, {spec.backend}): {cause[:500]}. Rows written so far are kept; "
            f"fix the cause and rerun with --resume.")


def _worker_cls():
    from longsweep.runtime.worker import ModelWorker
    return ModelWorker


def summarize(table_dir: Loc, *, total: int, skipped: int, ran: int, wall_s: float, since: str,
              model: str | None = None) -> SweepSummary:
    """The counts of ``model``'s rows in the table (several models write one table), or of all rows."""
    t = read_table(table_dir, columns=["key", "status", "error_kind", "completion_tokens", "finished_at", "model",
                                       "backend", "prompt_tokens", "cached_tokens"])
    s = SweepSummary(table_dir.parent, table_dir, total, skipped, ran, wall_s=wall_s)
    if t is None:
        return s
    rows = t.to_pylist()
    if model is not None and "model" in t.column_names:
        rows = [r for r in rows if r["model"] == model]
    s.rows = len(rows)
    s.ok = sum(r["status"] == "ok" for r in rows)
    s.errors = s.rows - s.ok
    s.errors_by_kind = dict(Counter(r["error_kind"] or "unknown" for r in rows if r["status"] != "ok"))
    s.completion_tokens = sum(r["completion_tokens"] or 0 for r in rows if (r["finished_at"] or "") >= since)
    s.engine = engine_stats.read(table_dir.parent, model)
    hit = prefix_hit(rows, (s.engine or {}).get("block_size"))
    s.prefix_cache = hit.as_dict() if hit else None
    return s


def prefix_cache_line(d: dict[str, Any] | None) -> str:
    """The summary's prefix-cache line: the hit rate against its ideal, or n/a where the engine gave none."""
    return PrefixHit(**{k: v for k, v in d.items() if k != "rate"}).line() if d else \
        "prefix cache: n/a (the engine reported no cached tokens)"
