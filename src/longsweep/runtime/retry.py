"""Retry with a model-state reset in between: the transient-error policy of a worker.

Three kinds of error, handled in three places:
  - fatal (engine cannot load): raised by the worker's constructor, stops the sweep;
  - per-item (prompt too long, answer still empty or unparseable after retries): a row
    with ``status="error"``, ``error_kind`` and the reason;
  - transient (empty/short answer, engine exception, unparseable answer): retried
    after ``engine.reset()``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from longsweep.config import WorkerPolicy
from longsweep.engines.base import Engine, GenerationRequest, GenerationResult
from longsweep.errors import EngineDeadError, ErrorKind, FatalEngineError, PromptTooLongError

logger = logging.getLogger(__name__)

# accept(result) -> (ok, parsed value or None, reason when not ok)
Acceptor = Callable[[GenerationResult], tuple[bool, Any, str]]


def min_chars_for(min_chars: int, max_tokens: int | None) -> int:
    """The shortest answer accepted: ``min_chars``, when ``max_tokens`` leaves room for it (a token gives at
    least one character); else any non-empty answer (``generate --max-tokens 4`` may answer "A: 1")."""
    if max_tokens is not None and max_tokens < min_chars:
        return min(1, min_chars)
    return min_chars


def accept_min_chars(min_chars: int, max_tokens: int | None = None) -> Acceptor:
    need = min_chars_for(min_chars, max_tokens)

    def accept(res: GenerationResult) -> tuple[bool, Any, str]:
        n = len(res.text.strip())
        if n < need:
            return False, None, f"answer has {n} characters (< minimum {need})"
        return True, None, ""
    return accept


@dataclass
class Outcome:
    """The last result of an item after its retries, and what it took."""

    result: GenerationResult | None
    parsed: Any = None
    ok: bool = False
    error: str | None = None
    error_kind: ErrorKind | None = None
    attempts: int = 0
    resets: int = 0
    reasons: list[str] = field(default_factory=list)


class StateKeeper:
    """Resets one engine's model state and logs why."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def reset(self, why: str, key: str = "") -> None:
        t0 = time.perf_counter()
        self.engine.reset()
        logger.info("reset model state (%s) key=%s in %.3fs", why, key, time.perf_counter() - t0)


def _attempt(engine: Engine, reqs: list[GenerationRequest]) -> list[GenerationResult | Exception]:
    """One engine call for ``reqs``; when the batch call fails, each item alone (to isolate the bad one)."""
    try:
        return list(engine.generate(reqs))
    except (EngineDeadError, FatalEngineError):
        raise  # not an item's fault: the worker ends (dead engine) or the sweep stops (fatal)
    except Exception as e:  # noqa: BLE001 - an engine fault is the failing item's error, not the batch's
        if len(reqs) == 1:
            return [e]
        logger.info("batch of %d failed (%s); running its items one by one", len(reqs), e)
        return [r for req in reqs for r in _attempt(engine, [req])]


@dataclass
class RetryItem:
    """One item to generate: its key, request, acceptance test and the engine that runs it."""

    key: str
    req: GenerationRequest
    accept: Acceptor | None
    engine: Engine


def run_rounds(jobs: list[RetryItem], policy: WorkerPolicy, keeper: StateKeeper) -> list[Outcome]:
    """Generate every job until its ``accept`` holds, at most ``1 + policy.max_retries`` attempts each.

    Attempts go in rounds: round 1 is one batched engine call for all jobs (vLLM batches
    them; llama.cpp runs them in turn); the jobs still not accepted are retried together in
    the next round, after one model-state reset. A reset serves every job of its round, and
    each of them counts it in ``resets``. Jobs on different engines (fault injection) are
    called separately. A prompt that is too long is never retried.
    """
    outs = [Outcome(result=None) for _ in jobs]
    pending = list(range(len(jobs)))
    for attempt in range(1, policy.max_retries + 2):
        if not pending:
            break
        if attempt > 1:
            keeper.reset(f"retry of {len(pending)} item(s)", jobs[pending[0]].key)
            for i in pending:
                outs[i].resets += 1
        results: dict[int, GenerationResult | Exception] = {}
        by_engine: dict[int, list[int]] = {}
        for i in pending:
            by_engine.setdefault(id(jobs[i].engine), []).append(i)
        for idx in by_engine.values():
            results.update(zip(idx, _attempt(jobs[idx[0]].engine, [jobs[i].req for i in idx])))
        still, long_answers = [], []
        for i in pending:
            if _judge(jobs[i], outs[i], results[i], attempt, policy):
                if _too_long(outs[i], policy):
                    long_answers.append(i)
            elif not _final(outs[i]):
                still.append(i)
        if long_answers:  # policy reset_after_chars: once for the round's very long answers
            n = max(len(outs[i].result.text) for i in long_answers)  # type: ignore[union-attr]
            keeper.reset(f"answer of {n} chars > {policy.reset_after_chars}", jobs[long_answers[0]].key)
            for i in long_answers:
                outs[i].resets += 1
        pending = still
    failed = [i for i, o in enumerate(outs) if not o.ok and o.error_kind != ErrorKind.PROMPT_TOO_LONG]
    for i in failed:
        if outs[i].error is None:
            outs[i].error = f"failed after {outs[i].attempts} attempts: " + "; ".join(outs[i].reasons)
    if failed and policy.reset_on_failure:
        keeper.reset(f"{len(failed)} item(s) failed", jobs[failed[0]].key)
        for i in failed:
            outs[i].resets += 1
    return outs


async def run_fed(item: RetryItem, policy: WorkerPolicy, keeper: StateKeeper) -> Outcome:
    """One item on an engine that is fed request by request (vLLM, a server): attempts until ``accept``
    holds, at most ``1 + policy.max_retries``, while other items keep running beside it. A reset asked
    for here never throws away the cache of running requests: a fed engine applies it when idle."""
    out = Outcome(result=None)
    for attempt in range(1, policy.max_retries + 2):
        if attempt > 1:
            keeper.reset("retry", item.key)
            out.resets += 1
        try:
            res: GenerationResult | Exception = await item.engine.agenerate(item.req)
        except (EngineDeadError, FatalEngineError):
            raise
        except Exception as e:  # noqa: BLE001 - this item's fault (or a refused prompt)
            res = e
        if _judge(item, out, res, attempt, policy):
            if _too_long(out, policy):
                keeper.reset(f"answer of {len(out.result.text)} chars > {policy.reset_after_chars}", item.key)  # type: ignore[union-attr]
                out.resets += 1
            return out
        if _final(out):
            return out
    if out.error is None:
        out.error = f"failed after {out.attempts} attempts: " + "; ".join(out.reasons)
    if policy.reset_on_failure:
        keeper.reset("item failed", item.key)
        out.resets += 1
    return out


def _final(out: Outcome) -> bool:
    """A failure that retrying cannot mend: a prompt too long, or an error the engine calls final."""
    return out.error_kind == ErrorKind.PROMPT_TOO_LONG or (not out.ok and out.error is not None)


def _too_long(out: Outcome, policy: WorkerPolicy) -> bool:
    lim = policy.reset_after_chars
    return lim is not None and out.result is not None and len(out.result.text) > lim


def _judge(job: RetryItem, out: Outcome, res: GenerationResult | Exception, attempt: int, policy: WorkerPolicy) -> bool:
    """Record one attempt's result in ``out``; True when it is accepted."""
    out.attempts = attempt
    if isinstance(res, PromptTooLongError):  # never transient: retrying cannot help
        out.error, out.error_kind = str(res), ErrorKind.PROMPT_TOO_LONG
        return False
    if isinstance(res, Exception):  # an engine fault on one item is that item's error
        logger.warning("engine error key=%s attempt=%d: %s", job.key, attempt, res)
        out.reasons.append(f"engine error: {res}")
        out.error_kind = ErrorKind(getattr(res, "error_kind", ErrorKind.ENGINE_ERROR))
        if not getattr(res, "retryable", True):  # e.g. a server's 4xx: asking again gets the same answer
            out.error = f"failed: {res}"
        return False
    out.result = res
    try:
        ok, parsed, why = (job.accept or accept_min_chars(policy.min_chars, job.req.max_tokens))(res)
    except Exception as e:  # noqa: BLE001 - an answer that breaks its check is this item's rejection
        ok, parsed, why = False, None, f"the answer could not be checked ({type(e).__name__}: {e})"
    out.parsed = parsed
    if ok:
        out.ok, out.error, out.error_kind = True, None, None
        return True
    out.reasons.append(why)
    out.error_kind = ErrorKind.EMPTY_OUTPUT if not res.text.strip() else ErrorKind.REJECTED_OUTPUT
    logger.info("rejected answer key=%s attempt=%d: %s", job.key, attempt, why)
    return False
