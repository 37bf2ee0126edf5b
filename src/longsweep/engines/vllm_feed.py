"""Feeding a vLLM engine continuously: one thread steps the engine; requests enter at any time.

``LLM.generate`` adds a batch and steps until every request of it is done, so the engine drains at
each batch boundary. ``EngineFeed`` owns the stepping instead: ``submit`` queues a request from any
thread and returns a future; the feed thread adds queued requests to vLLM's engine between steps,
so new work joins the running set while earlier requests still decode (continuous batching across
batches and story turns). Only the feed thread touches the engine (vLLM's ``LLMEngine`` is not
thread-safe). ``LLMEngine.add_request`` / ``step`` / ``abort_request`` / ``reset_prefix_cache`` are
the engine API ``LLM`` itself uses in vLLM 0.32 (``vllm/entrypoints/common/offline.py``).

Order: each request carries its batch's place in the plan (``order``, ``engines.base.FEED_ORDER``) and enters
as the request's ``priority`` of an engine built with ``scheduling_policy="priority"``: vLLM's waiting queue
is then ordered by (priority, arrival), so the plan's order holds whatever order Ray delivers the batches in
(four calls in flight reached the engine shuffled: bench/kv_sweep.py, 1,036 steps against 1,008). Requests
that reach an idle engine are gathered for as long as more keep coming (``GATHER_QUIET_S`` apart, at most
``GATHER_MAX_S``), so the first step is taken over the whole of what arrived together, as ``LLM.generate`` does.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from longsweep.errors import EngineDeadError

logger = logging.getLogger(__name__)
GATHER_QUIET_S = 0.01  # an idle engine waits for more requests while they arrive at most this far apart
GATHER_MAX_S = 0.25  # and never longer than this before its first step


class EngineFeed:
    """A thread that steps ``engine`` (a vLLM ``LLMEngine``) while requests come and go."""

    def __init__(self, engine: Any, *, is_dead=lambda e: False):
        self._engine = engine
        self._is_dead = is_dead
        self._inbox: queue.Queue = queue.Queue()
        self._futures: dict[str, Future] = {}
        self._ids = itertools.count()
        self._wake = threading.Event()
        self._reset_wanted = False
        self._closed = False
        self.dead: BaseException | None = None
        self.resets_done = 0
        self._thread = threading.Thread(target=self._loop, name="vllm-feed", daemon=True)
        self._thread.start()

    def submit(self, prompt: dict, params: Any, order: int = 0) -> Future:
        """Queue one request; the future resolves to vLLM's final ``RequestOutput`` or its exception.
        ``order``: its batch's place in the plan; lower starts first (vLLM's ``priority``)."""
        fut: Future = Future()
        if self.dead is not None:
            fut.set_exception(EngineDeadError(f"vLLM engine is dead: {self.dead}"))
            return fut
        self._inbox.put((f"feed-{next(self._ids)}", prompt, params, fut, order))
        self._wake.set()
        return fut

    def request_reset(self) -> None:
        """Reset the prefix cache at the next moment the engine runs no request (never under running ones)."""
        self._reset_wanted = True
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._futures)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)

    def _admit(self) -> None:
        """Add what the inbox holds to the engine, in the plan's order; into an idle engine, what keeps
        arriving together is gathered first."""
        got = self._drain()
        if got and not self._futures:
            t_end = time.monotonic() + GATHER_MAX_S
            while time.monotonic() < t_end:
                time.sleep(GATHER_QUIET_S)
                more = self._drain()
                if not more:
                    break
                got += more
        # sorted: order, then arrival (a stable sort keeps each batch's items as submitted)
        for rid, prompt, params, fut, order in sorted(got, key=lambda r: r[4]):
            try:
                self._engine.add_request(rid, prompt, params, priority=order)
            except Exception as e:  # noqa: BLE001 - a request vLLM refuses (too long, bad input) fails alone
                fut.set_exception(e)
                continue
            self._futures[rid] = fut

    def _drain(self) -> list:
        got = []
        while True:
            try:
                got.append(self._inbox.get_nowait())
            except queue.Empty:
                return got

    def _loop(self) -> None:
        while not self._closed:
            self._admit()
            if not self._futures:
                if self._reset_wanted:
                    self._reset_wanted = False
                    self.resets_done += int(bool(self._engine.reset_prefix_cache()))
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            try:
                outputs = self._engine.step()
            except Exception as e:  # noqa: BLE001 - a step that raises fails every running request
                self._fail_running(e)
                continue
            for out in outputs:
                if out.finished:
                    fut = self._futures.pop(out.request_id, None)
                    if fut is not None:
                        fut.set_result(out)
        self._fail_running(RuntimeError("engine feed closed"))

    def _fail_running(self, e: BaseException) -> None:
        if not self._futures:
            return
        dead = self._is_dead(e)
        if dead:
            self.dead = e
            logger.error("vLLM engine died: %s", e)
        else:
            logger.warning("vLLM step failed (%s); aborting %d running request(s)", e, len(self._futures))
            try:
                self._engine.abort_request(list(self._futures))
            except Exception as abort_err:  # noqa: BLE001 - best effort
                logger.warning("could not abort running vLLM requests: %s", abort_err)
        err = EngineDeadError(f"vLLM engine is dead: {e}") if dead else e
        for fut in self._futures.values():
            fut.set_exception(err)
        self._futures.clear()
