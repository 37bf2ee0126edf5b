"""Several models of one sweep at the same time, one thread each (each thread runs its model's actor pool).

A model that fails (its actors cannot start, its inputs are refused) is said at once on stderr while the
others go on; when all have ended, the first failure is raised with the summaries of the models that
finished attached (``finished``), so the command prints them before its one ``fatal`` line. A signal
interrupts every model's thread (runtime/signals.py) and is raised as it is.
"""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def run_each(fn: Callable[[Any], T], specs: list[Any]) -> list[T]:
    """``fn(spec)`` for every spec at once; the results in the order of ``specs``."""
    results: dict[int, T] = {}
    failed: list[tuple[int, BaseException]] = []
    with ThreadPoolExecutor(max_workers=len(specs), thread_name_prefix="model") as pool:
        futures: dict[Future, int] = {pool.submit(fn, spec): i for i, spec in enumerate(specs)}
        for f in as_completed(futures):
            i, err = futures[f], f.exception()
            if err is None:
                results[i] = f.result()
                continue
            failed.append((i, err))
            if not isinstance(err, KeyboardInterrupt):
                others = len(specs) - len(results) - len(failed)
                sys.stderr.write(f"[longsweep] {specs[i].name} failed: {err}"
                                 + (f" ({others} other model(s) go on)" if others else "") + "\n")
                sys.stderr.flush()
    if failed:
        interrupts = [e for _, e in failed if isinstance(e, KeyboardInterrupt)]
        first = interrupts[0] if interrupts else min(failed, key=lambda p: p[0])[1]
        first.finished = [(specs[i], results[i]) for i in sorted(results)]  # type: ignore[attr-defined]
        raise first
    return [results[i] for i in range(len(specs))]
