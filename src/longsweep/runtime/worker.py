"""ModelWorker: one Ray actor = one model instance, for the actor's whole life.

Used as the callable class of ``Dataset.map_batches``: each input row is one planned batch (JSON of
``WorkItem``s); the output is the job's rows for it as an Arrow table with the job's flat schema (rows
a task wrote earlier through the sink are not returned again). ``__call__`` is a coroutine: on a fed
engine (vLLM, a server) several batches are in flight per actor and their items share the engine's
running set; on llama.cpp one batch runs at a time. The worker knows jobs only through the ``Job``
contract (``jobs/base.py``).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pyarrow as pa

from longsweep.config import ModelSpec
from longsweep.engines.base import FEED_ORDER
from longsweep.engines.registry import load_engine
from longsweep.errors import EngineDeadError, EngineLoadError, FatalEngineError
from longsweep.jobs.base import Job
from longsweep.results import clean_text, to_table
from longsweep.runtime import engine_stats
from longsweep.runtime.context import WorkerContext
from longsweep.runtime.nodes import InFlight
from longsweep.runtime.plan import unpack
from longsweep.runtime.sink import RowSink
from longsweep.secrets import Secret

logger = logging.getLogger(__name__)

EXIT_ENGINE_DEAD = 70  # the actor's process ends with this code when its engine is dead; Ray restarts it


class ModelWorker:
    """Callable class for ``map_batches``: owns one engine; explicit ``close()``."""

    def __init__(self, *, job: Job, model: dict, sweep_id: str, table_dir: str, api_key: Secret | None = None):
        t0 = time.perf_counter()
        spec = ModelSpec.model_validate(model)
        policy = job.policy()
        if (policy.fault_injection or {}).get("load") == "raise":  # tests: an engine that cannot load
            raise EngineLoadError(f"injected: model {spec.name} cannot load")
        self.engine = load_engine(spec, api_key=api_key)  # EngineLoadError is fatal: Ray reports it, the sweep stops
        self.job = job
        self.schema = job.schema()
        self.sink = RowSink(table_dir, self.schema)
        self.ctx = WorkerContext(self.engine, spec, policy, sweep_id, sink=self.sink)
        self.task = job.task(self.ctx)
        self.inflight = InFlight(spec.name)  # batches cut short by a lost node are counted (runtime/nodes.py)
        logger.info("worker %s loaded %s (%s) in %.2fs", self.ctx.worker_id, spec.name, spec.backend,
                    time.perf_counter() - t0)

    async def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        unpacked = [unpack(blob) for blob in batch["items"]]
        items = [it for its, _ in unpacked for it in its]
        # this call's requests start in the plan's order on a fed engine (one call is one asyncio task: the
        # value is this call's own, and its item coroutines inherit it)
        FEED_ORDER.set(min((order for _, order in unpacked), default=0))
        t0 = time.perf_counter()
        mark = self.inflight.begin()
        try:
            rows = await self._rows(items)
        except EngineDeadError as e:
            # Not one item's fault: end this process so that Ray restarts the actor (a fresh engine) and
            # retries the batch there. Rows of this batch were not returned; rows a task already flushed
            # through the sink are on disk and are skipped by key when the batch runs again.
            self.sink.flush()
            logger.error("worker %s: engine dead (%s); exiting so Ray restarts it", self.ctx.worker_id, e)
            os._exit(EXIT_ENGINE_DEAD)
        self.sink.flush()
        engine_stats.record(self.sink.dir.parent, self.ctx.spec.name, self.ctx.worker_id, self.engine.stats())
        self.inflight.end(mark)
        logger.info("worker %s: %d items -> %d rows in %.2fs", self.ctx.worker_id, len(items), len(rows),
                    time.perf_counter() - t0)
        return to_table(rows, self.schema)

    async def _rows(self, items: list) -> list[dict]:
        """The task's rows for ``items``. One item's data never takes its batch with it: when the task raises
        (not a fatal or dead engine), each item runs alone, and one that raises again is its own error row."""
        try:
            return await self.task.run(items)
        except (EngineDeadError, EngineLoadError, FatalEngineError):
            raise
        except Exception as e:  # noqa: BLE001 - an item's data broke the job's code: isolate it
            if len(items) == 1:
                why = clean_text(f"{type(e).__name__}: {e}")[:1000]
                logger.warning("worker %s: key=%s failed in the task: %s", self.ctx.worker_id, items[0].key, why)
                return self.job.item_error_rows(items[0], self.ctx, f"the job failed on this item: {why}")
            logger.warning("worker %s: a batch of %d items failed in the task (%s: %s); running them one by one",
                           self.ctx.worker_id, len(items), type(e).__name__, clean_text(str(e))[:300])
            rows: list[dict] = []
            for it in items:
                rows += await self._rows([it])
            return rows

    def close(self) -> None:
        self.sink.flush()
        self.engine.close()
