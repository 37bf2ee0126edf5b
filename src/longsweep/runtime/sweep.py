"""The sweep driver: skip what is done, plan batches, run the actor pool, write Parquet.

Used by every job (generate, review, stories). Items are dicts with a stable
``key`` and a predicted ``cost``; rows already known to be errors before any
model runs (a corrupt PDF) are written directly, so they too appear exactly once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.errors import FatalError
from longsweep.runtime.error_budget import ErrorBudget
from longsweep.results import SCHEMAS, done_keys, now_iso, read_table, to_table, write_manifest
from longsweep.runtime.placement import actor_resources, remote_args_fn
from longsweep.runtime.plan import batches_per_actor, pack_batch, plan_batches

logger = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    sweep_dir: Path
    table_dir: Path
    total: int
    skipped: int
    ran: int
    rows: int = 0
    ok: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    completion_tokens: int = 0
    stopped: str | None = None  # why the sweep stopped early (error budget), None when it ran to the end
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
        ] + [f"{k}: {v}" for k, v in self.extra.items()]


def write_rows_direct(table_dir: Path, rows: list[dict[str, Any]], schema_name: str) -> None:
    """Rows decided on the driver (per-item errors before any model ran)."""
    if not rows:
        return
    table_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(to_table(rows, SCHEMAS[schema_name]), table_dir / f"driver_{uuid.uuid4().hex}.parquet")


def run_sweep(
    items: list[dict[str, Any]],
    *,
    spec: ModelSpec,
    task: str,
    table: str,
    sweep_dir: Path,
    sweep_id: str,
    policy: WorkerPolicy | None = None,
    concurrency: tuple[int, int] = (1, 1),
    batch_items: int = 4,
    options: dict[str, Any] | None = None,
    error_rows: list[dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None,
    multi_row: bool = False,
    budget: ErrorBudget | None = None,
    planner: Callable[[list[dict[str, Any]]], list[list[dict[str, Any]]]] | None = None,
) -> SweepSummary:
    """Run every item whose key is not yet in ``sweep_dir/table``; return the counts."""
    import ray

    t0 = time.perf_counter()
    policy = policy or WorkerPolicy()
    table_dir = Path(sweep_dir) / table
    done = done_keys(table_dir)
    all_keys = [it["key"] for it in items] + [r["key"] for r in (error_rows or [])]
    dup = [k for k, n in Counter(all_keys).items() if n > 1]
    if dup:
        raise ValueError(f"duplicate work item keys: {dup[:5]}")
    # multi-row items (a story's turns) are written together: one row key means the item is done
    done_items = {k.rsplit("/", 1)[0] for k in done} if multi_row else done
    item_done = lambda it: it["key"] in done_items  # noqa: E731
    todo = [it for it in items if not item_done(it)]
    fresh_errors = [r for r in (error_rows or []) if r["key"] not in done]
    skipped = len(items) + len(error_rows or []) - len(todo) - len(fresh_errors)
    started = now_iso()
    write_manifest(Path(sweep_dir), sweep_id=sweep_id, job=task, model=spec.model_dump(mode="json"),
                   config=config or {}, policy=policy.model_dump(mode="json"), started_at=started,
                   planned_items=len(items) + len(error_rows or []), skipped=skipped)
    write_rows_direct(table_dir, fresh_errors, table)
    budget = budget or ErrorBudget()
    n_rows = sum(int(it.get("n_rows", 1)) for it in todo) + len(fresh_errors)
    stopped = budget.exceeded(rows=len(fresh_errors), errors=len(fresh_errors), total=n_rows)
    if todo and not stopped:
        batches = planner(todo) if planner else plan_batches(
            todo, max_items=batch_items, n_actors=concurrency[1], per_actor=batches_per_actor(spec.backend))
        logger.info("sweep %s: %d items to run in %d batches (%d done already)", sweep_id, len(todo),
                    len(batches), skipped)
        # Ray Data grows an actor pool when in-flight tasks / actors >= this threshold (default 1.75, which
        # one batch in flight per actor never reaches): grow as soon as every actor is busy.
        ray.data.DataContext.get_current().autoscaling_config.actor_pool_util_upscaling_threshold = 1.0
        ds = ray.data.from_items(
            [{"items": pack_batch(b)} for b in batches], override_num_blocks=len(batches))
        ds = ds.map_batches(
            _worker_cls(),
            batch_size=1,
            # an actor pool that starts with what is there and grows to `max` as nodes join
            compute=ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1],
                                               max_tasks_in_flight_per_actor=1),
            fn_constructor_kwargs=dict(model=spec.model_dump(mode="json"), policy=policy.model_dump(mode="json"),
                                       task=task, sweep_id=sweep_id, options=options or {}),
            # per-actor resources from the model registry; a model across N GPUs gets a placement group of N
            **{k: v for k, v in actor_resources(spec).items() if v is not None},
            ray_remote_args_fn=remote_args_fn(spec),
        )
        from longsweep.runtime.progress import Progress
        progress = Progress(table_dir, total=n_rows, already=done, budget=budget)
        # driver-side error rows count against the budget too
        progress.done = progress.errors = len(fresh_errors)
        try:
            with progress:
                # writes ask for no CPU: the actors may hold every CPU, and rows must land as batches finish
                ds.write_parquet(str(table_dir), ray_remote_args={"num_cpus": 0})
        except KeyboardInterrupt:
            if progress.stop_reason is None:
                raise
        except Exception as e:  # noqa: BLE001 - Ray Data fails the whole execution when actors cannot start
            msg = fatal_message(spec, e)
            write_manifest(Path(sweep_dir), sweep_id=sweep_id, job=task, started_at=started, finished_at=now_iso(),
                           fatal=msg)
            raise FatalError(msg) from e
        stopped = progress.stop_reason
    summary = summarize(table_dir, total=len(items) + len(error_rows or []), skipped=skipped,
                        ran=len(todo) + len(fresh_errors), wall_s=time.perf_counter() - t0, since=started)
    summary.stopped = stopped
    write_manifest(Path(sweep_dir), sweep_id=sweep_id, job=task, started_at=started, finished_at=now_iso(),
                   stopped=stopped, counts={"rows": summary.rows, "ok": summary.ok, "error": summary.errors,
                                            "errors_by_kind": summary.errors_by_kind})
    return summary


def fatal_message(spec: ModelSpec, e: BaseException) -> str:
    """One clear sentence from a failed execution: the root cause, not Ray's traceback."""
    import re
    text = str(e)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # the root cause is the last "SomeError: message" line of the remote traceback
    causes = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception): ", ln)]
    load = [ln for ln in causes if "EngineLoadError: " in ln]
    cause = (load or causes or lines or [type(e).__name__])[-1]
    what = "the model workers could not start" if "init" in text or "EngineLoadError" in text else "the sweep failed"
    return (f"{what} ({spec.name}, {spec.backend}): {cause[:500]}. Rows written so far are kept; "
            f"fix the cause and rerun with --resume.")


def _worker_cls():
    from longsweep.runtime.worker import ModelWorker
    return ModelWorker


def summarize(table_dir: Path, *, total: int, skipped: int, ran: int, wall_s: float, since: str) -> SweepSummary:
    t = read_table(table_dir, columns=["key", "status", "error_kind", "completion_tokens", "finished_at"])
    s = SweepSummary(Path(table_dir).parent, Path(table_dir), total, skipped, ran, wall_s=wall_s)
    if t is None:
        return s
    rows = t.to_pylist()
    s.rows = len(rows)
    s.ok = sum(r["status"] == "ok" for r in rows)
    s.errors = s.rows - s.ok
    s.errors_by_kind = dict(Counter(r["error_kind"] or "unknown" for r in rows if r["status"] != "ok"))
    s.completion_tokens = sum(r["completion_tokens"] or 0 for r in rows if (r["finished_at"] or "") >= since)
    return s
