"""A sweep progress line on top of Ray Data's own bars: items done/total, errors, tokens/s, ETA.

A driver thread watches the table folder: workers' Parquet files land there as their
batches finish, so the count is what is really written, not what was dispatched.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq


class Progress:
    def __init__(self, table_dir: Path, *, total: int, already: set[str], every_s: float = 5.0, stream=None):
        self.dir, self.total, self.every = Path(table_dir), total, every_s
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

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.poll()
            self.stream.write(self.line() + "\n")
            self.stream.flush()
