"""What a job's task gets from its worker: the engine, the spec, the policy, identity, row helpers."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.engines.base import Engine, GenerationRequest
from longsweep.errors import ErrorKind
from longsweep.results import error_row, now_iso
from longsweep.runtime.sink import RowSink
from longsweep.runtime.retry import Acceptor, Outcome, RetryItem, StateKeeper, run_fed, run_rounds

logger = logging.getLogger(__name__)


class WorkerContext:
    """One per actor; tasks call ``generate_many`` and build rows with ``outcome_row``/``error_row``."""

    def __init__(self, engine: Engine, spec: ModelSpec, policy: WorkerPolicy, sweep_id: str,
                 sink: RowSink | None = None):
        self.engine, self.spec, self.policy, self.sweep_id = engine, spec, policy, sweep_id
        self.sink = sink  # rows that leave as they finish (story turns); None outside a sweep
        self.keeper = StateKeeper(engine)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"

    def maybe_inject_fault(self, key: str) -> Engine:
        """Tests only: ``policy.fault_injection = {key: "exit_once:<marker file>" | "raise" | "dead_once:<marker>"}``.

        ``exit_once`` kills this worker process the first time it meets ``key``; ``dead_once`` makes the
        engine report itself dead the first time (the worker must end so Ray restarts it); ``raise`` makes
        every engine call for ``key`` fail, as a broken engine would. Returns the engine to use for ``key``."""
        spec = (self.policy.fault_injection or {}).get(key)
        if spec and spec.split(":", 1)[0] in ("exit_once", "dead_once"):
            marker = spec.split(":", 1)[1]
            if not os.path.exists(marker):
                with open(marker, "w") as f:
                    f.write(self.worker_id)  # which process died, for the test to check
                if spec.startswith("exit_once"):
                    logger.error("fault injection: worker exits on key=%s", key)
                    os._exit(17)
                return _FailingEngine(self.engine, key, dead=True)
        if spec == "raise":
            return _FailingEngine(self.engine, key)
        return self.engine

    async def generate_many(self, keyed: list[tuple[str, GenerationRequest, Acceptor | None]]) -> list[Outcome]:
        """Outcomes of ``keyed`` items with retries. A fed engine (vLLM, a server) gets each item as its
        own request, entering while the items of other batches and sequences still run; an engine that
        runs one sequence at a time (llama.cpp) gets them in rounds: all items, then the failed ones
        together after one reset."""
        items = [RetryItem(key, req, acc, self.maybe_inject_fault(key)) for key, req, acc in keyed]
        if self.engine.feeds:
            import asyncio
            return list(await asyncio.gather(*(run_fed(it, self.policy, self.keeper) for it in items)))
        return run_rounds(items, self.policy, self.keeper)

    def outcome_row(self, key: str, out: Outcome, seed: int | None, item_key: str | None = None) -> dict[str, Any]:
        """The common columns of a row from an engine outcome (ok or error)."""
        r = out.result
        return {
            "key": key, "item_key": item_key or key, "sweep_id": self.sweep_id, "model": self.spec.name,
            "backend": self.spec.backend, "status": "ok" if out.ok else "error", "error": out.error,
            "error_kind": str(out.error_kind) if out.error_kind else None,
            "attempts": out.attempts, "resets": out.resets,
            "prompt_tokens": r.prompt_tokens if r else None,
            "completion_tokens": r.completion_tokens if r else None,
            "cached_tokens": r.cached_tokens if r else None,
            # an endpoint's own prompt count, and whether it differs from ours by more than its tolerance
            "server_prompt_tokens": getattr(r, "server_prompt_tokens", None),
            "prompt_tokens_mismatch": getattr(r, "prompt_tokens_mismatch", None),
            # its completion count when it is an integer; the mismatch flag: it was impossible, ours is used
            "server_completion_tokens": getattr(r, "server_completion_tokens", None),
            "completion_tokens_mismatch": getattr(r, "completion_tokens_mismatch", None),
            "finish_reason": r.finish_reason if r else None, "seed": seed,
            "latency_s": r.latency_s if r else None, "prefill_s": r.prefill_s if r else None,
            "decode_s": r.decode_s if r else None, "tokens_per_s": r.tokens_per_s if r else None,
            "worker": self.worker_id, "finished_at": now_iso(),
        }

    def ok_row(self, key: str, **columns: Any) -> dict[str, Any]:
        """The common columns of an ok row that no engine call produced (e.g. a count)."""
        return {"key": key, "item_key": key, "sweep_id": self.sweep_id, "model": self.spec.name,
                "backend": self.spec.backend, "status": "ok", "attempts": 0, "resets": 0,
                "worker": self.worker_id, "finished_at": now_iso(), **columns}

    def error_row(self, key: str, kind: ErrorKind, error: str, **columns: Any) -> dict[str, Any]:
        return error_row(key, kind, error, sweep_id=self.sweep_id, model=self.spec.name, backend=self.spec.backend,
                         worker=self.worker_id, **columns)


class _FailingEngine:
    """Fault injection: an engine whose every generate call for one item raises (or reports death)."""

    def __init__(self, engine: Engine, key: str, dead: bool = False):
        self._engine, self._key, self._dead = engine, key, dead

    def generate(self, requests):
        from longsweep.errors import EngineDeadError
        if self._dead:
            raise EngineDeadError(f"injected: engine died on {self._key}")
        raise RuntimeError(f"injected engine fault on {self._key}")

    async def agenerate(self, request):
        return self.generate([request])

    def __getattr__(self, name: str):
        return getattr(self._engine, name)
