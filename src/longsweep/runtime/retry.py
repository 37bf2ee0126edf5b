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

from longsweep.budget import PromptTooLongError
from longsweep.config import WorkerPolicy
from longsweep.engines.base import Engine, GenerationRequest, GenerationResult

logger = logging.getLogger(__name__)

# accept(result) -> (ok, parsed value or None, reason when not ok)
Acceptor = Callable[[GenerationResult], tuple[bool, Any, str]]


def accept_min_chars(min_chars: int) -> Acceptor:
    def accept(res: GenerationResult) -> tuple[bool, Any, str]:
        n = len(res.text.strip())
        if n < min_chars:
            return False, None, f"answer has {n} characters (< minimum {min_chars})"
        return True, None, ""
    return accept


@dataclass
class Outcome:
    """The last result of an item after its retries, and what it took."""

    result: GenerationResult | None
    parsed: Any = None
    ok: bool = False
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0
    resets: int = 0
    reasons: list[str] = field(default_factory=list)


class StateKeeper:
    """Counts and applies resets of one engine according to the policy."""

    def __init__(self, engine: Engine, policy: WorkerPolicy):
        self.engine, self.policy = engine, policy
        self.total_resets = 0

    def reset(self, why: str, key: str = "") -> None:
        t0 = time.perf_counter()
        self.engine.reset()
        self.total_resets += 1
        logger.info("reset model state (%s) key=%s in %.3fs", why, key, time.perf_counter() - t0)

    def after_answer(self, text: str, key: str = "") -> int:
        """Reset after a very long answer (policy ``reset_after_chars``); returns resets done."""
        lim = self.policy.reset_after_chars
        if lim is not None and len(text) > lim:
            self.reset(f"answer of {len(text)} chars > {lim}", key)
            return 1
        return 0


def run_one(
    engine: Engine,
    req: GenerationRequest,
    policy: WorkerPolicy,
    keeper: StateKeeper,
    *,
    key: str = "",
    accept: Acceptor | None = None,
    first: GenerationResult | Exception | None = None,
) -> Outcome:
    """Generate ``req`` until ``accept`` holds, at most ``1 + policy.max_retries`` attempts.

    ``first`` is the result of an attempt already made (for example as part of a
    batch); it counts as attempt 1. Between attempts the model state is reset.
    """
    accept = accept or accept_min_chars(policy.min_chars)
    out = Outcome(result=None)
    for attempt in range(1, policy.max_retries + 2):
        if attempt > 1:
            keeper.reset("retry", key)
            out.resets += 1
        out.attempts = attempt
        try:
            res = first if (attempt == 1 and first is not None) else engine.generate([req])[0]
            if isinstance(res, Exception):
                raise res
        except PromptTooLongError as e:  # never transient: retrying cannot help
            out.error, out.error_kind = str(e), "prompt_too_long"
            return out
        except Exception as e:  # noqa: BLE001 - an engine fault on one item is that item's error
            logger.warning("engine error key=%s attempt=%d: %s", key, attempt, e)
            out.reasons.append(f"engine error: {e}")
            out.error_kind = "engine_error"
            if policy.reset_on_failure and attempt == policy.max_retries + 1:
                keeper.reset("failure", key)
                out.resets += 1
            continue
        out.result = res
        ok, parsed, why = accept(res)
        if ok:
            out.ok, out.parsed, out.error, out.error_kind = True, parsed, None, None
            out.resets += keeper.after_answer(res.text, key)
            return out
        out.parsed = parsed
        out.reasons.append(why)
        out.error_kind = "empty_output" if not res.text.strip() else "rejected_output"
        logger.info("rejected answer key=%s attempt=%d: %s", key, attempt, why)
    if policy.reset_on_failure and out.error_kind != "engine_error":
        keeper.reset("failure", key)
        out.resets += 1
    out.error = f"failed after {out.attempts} attempts: " + "; ".join(out.reasons)
    return out
