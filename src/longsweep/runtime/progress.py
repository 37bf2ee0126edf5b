"""A sweep progress line on top of Ray Data's own bars: items done/total, errors, tokens/s, ETA.

A driver thread watches the table folder: workers' Parquet files land there as their
batches finish, so the count is what is really written, not what was dispatched.
The same thread enforces the error budget: when it is spent, it records why and
interrupts the driver's main thread, which stops the Ray Data execution.
"""

from __future__ import annotations

import _thread
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

from longsweep.runtime.error_budget import ErrorBudget


class Progress:
    def __init__(self, table_dir: Path, *, total: int, already: set[str], every_s: float = 5.0, stream=None,
                 budget: ErrorBudget | None = None, poll_s: float = 1.0):
        self.dir, self.total, self.every, self.poll_s = Path(table_dir), total, every_s, poll_s
        self.budget = budget or ErrorBudget()
        self.stop_reason: str | None = None
        self.seen: set[str] = set()
        self.done = self.errors = self.tokens = 0
        self.already = len(already)
        self.t0 = time.perf_counter()
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        if self.dir.exists():  # files of earlier runs and of driver-side error rows are not this run's progress
            self.seen.update(p.name for p in self.dir.glob("*.parquet"))

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()
        self.stream.write(self.line() + "\n")

    def poll(self) -> None:
        if not self.dir.exists():
            return
        for p in sorted(self.dir.glob("*.parquet")):
            if p.name in self.seen:
                continue
            try:
                t = pq.read_table(p, columns=["status", "completion_tokens"])
            except Exception:  # noqa: BLE001 - a file still being written: read it next time
                continue
            self.seen.add(p.name)
            self.done += t.num_rows
            self.errors += sum(s != "ok" for s in t.column("status").to_pylist())
            self.tokens += sum(n or 0 for n in t.column("completion_tokens").to_pylist())

    def line(self) -> str:
        el = time.perf_counter() - self.t0
        rate = self.done / el if el > 0 else 0.0
        left = self.total - self.done
        eta = f"{left / rate:.0f}s" if rate > 0 and left > 0 else ("0s" if left <= 0 else "?")
        return (f"[longsweep] rows {self.done}/{self.total} (+{self.already} done before)  errors {self.errors}  "
                f"{self.tokens / el if el > 0 else 0:.1f} tok/s  elapsed {el:.0f}s  ETA {eta}")

    def check_budget(self) -> str | None:
        if self.stop_reason is None:
            self.stop_reason = self.budget.exceeded(rows=self.done, errors=self.errors, total=self.total)
        return self.stop_reason

    def _loop(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(self.poll_s):
            self.poll()
            if self.check_budget():
                self.stream.write(f"[longsweep] stopping: {self.stop_reason}\n")
                _thread.interrupt_main()  # the driver's blocking write ends with KeyboardInterrupt
                return
            if time.perf_counter() - last >= self.every:
                last = time.perf_counter()
                self.stream.write(self.line() + "\n")
                self.stream.flush()
