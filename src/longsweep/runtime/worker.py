"""ModelWorker: one Ray actor = one model instance, for the actor's whole life.

Used as the callable class of ``Dataset.map_batches``: each input row is one
planned batch (a JSON list of work items); the output is one result row per item
(or per turn, for stories), as an Arrow table with the job's flat schema.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
from typing import Any

import numpy as np
import pyarrow as pa

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.engines.base import Engine, GenerationRequest
from longsweep.engines.registry import load_engine
from longsweep.results import now_iso, to_table
from longsweep.runtime.plan import unpack_batch
from longsweep.runtime.retry import Acceptor, Job, Outcome, StateKeeper, run_rounds

logger = logging.getLogger(__name__)

TASKS = {
    "generate": "longsweep.runtime.generate_task:GenerateTask",
    "review": "longsweep.papers.review_task:ReviewTask",
    "story": "longsweep.stories.story_task:StoryTask",
}


def _load_task(name: str) -> type:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    mod, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(mod), cls)


class WorkerContext:
    """What a task needs from its worker: the engine, the policy, identity, and batch helpers."""

    def __init__(self, engine: Engine, spec: ModelSpec, policy: WorkerPolicy, sweep_id: str):
        self.engine, self.spec, self.policy, self.sweep_id = engine, spec, policy, sweep_id
        self.keeper = StateKeeper(engine)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"

    def maybe_inject_fault(self, key: str) -> Engine:
        """Tests only: ``policy.fault_injection = {key: "exit_once:<marker file>" | "raise"}``.

        ``exit_once`` kills this worker process the first time it meets ``key``;
        ``raise`` makes every engine call for ``key`` fail, as a broken engine would.
        Returns the engine to use for ``key``."""
        spec = (self.policy.fault_injection or {}).get(key)
        if spec and spec.startswith("exit_once:"):
            marker = spec.split(":", 1)[1]
            if not os.path.exists(marker):
                open(marker, "w").close()
                logger.error("fault injection: worker exits on key=%s", key)
                os._exit(17)
        if spec == "raise":
            return _FailingEngine(self.engine, key)
        return self.engine

    def generate_many(self, keyed: list[tuple[str, GenerationRequest, Acceptor | None]]) -> list[Outcome]:
        """All items in one batched attempt (vLLM batches them), then the failed ones retried together."""
        jobs = [Job(key, req, acc, self.maybe_inject_fault(key)) for key, req, acc in keyed]
        return run_rounds(jobs, self.policy, self.keeper)

    def common_row(self, key: str, out: Outcome, seed: int | None) -> dict[str, Any]:
        r = out.result
        return {
            "key": key, "sweep_id": self.sweep_id, "model": self.spec.name, "backend": self.spec.backend,
            "status": "ok" if out.ok else "error", "error": out.error, "error_kind": out.error_kind,
            "attempts": out.attempts, "resets": out.resets,
            "prompt_tokens": r.prompt_tokens if r else None,
            "completion_tokens": r.completion_tokens if r else None,
            "cached_tokens": r.cached_tokens if r else None,
            "finish_reason": r.finish_reason if r else None, "seed": seed,
            "latency_s": r.latency_s if r else None, "prefill_s": r.prefill_s if r else None,
            "decode_s": r.decode_s if r else None, "tokens_per_s": r.tokens_per_s if r else None,
            "worker": self.worker_id, "finished_at": now_iso(),
        }


class _FailingEngine:
    """Fault injection: an engine whose every generate call for one item raises."""

    def __init__(self, engine: Engine, key: str):
        self._engine, self._key = engine, key

    def generate(self, requests):
        raise RuntimeError(f"injected engine fault on {self._key}")

    def __getattr__(self, name: str):
        return getattr(self._engine, name)


class ModelWorker:
    """Callable class for ``map_batches``: owns one engine; explicit ``close()``."""

    def __init__(self, *, model: dict, policy: dict, task: str, sweep_id: str, options: dict | None = None):
        t0 = time.perf_counter()
        spec = ModelSpec.model_validate(model)
        if (policy.get("fault_injection") or {}).get("load") == "raise":  # tests: an engine that cannot load
            from longsweep.engines.base import EngineLoadError
            raise EngineLoadError(f"injected: model {spec.name} cannot load")
        self.engine = load_engine(spec)  # EngineLoadError is fatal: Ray reports it, the sweep stops
        self.ctx = WorkerContext(self.engine, spec, WorkerPolicy.model_validate(policy), sweep_id)
        self.task = _load_task(task)(self.ctx, **(options or {}))
        logger.info("worker %s loaded %s (%s) in %.2fs", self.ctx.worker_id, spec.name, spec.backend,
                    time.perf_counter() - t0)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        items: list[dict] = []
        for blob in batch["items"]:
            items.extend(unpack_batch(blob))
        t0 = time.perf_counter()
        rows = self.task.run(items)
        logger.info("worker %s: %d items -> %d rows in %.2fs", self.ctx.worker_id, len(items), len(rows),
                    time.perf_counter() - t0)
        return to_table(rows, self.task.schema)

    def close(self) -> None:
        self.engine.close()
