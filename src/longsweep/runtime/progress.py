"""A sweep progress line on top of Ray Data's own bars: items done/total, errors, tokens/s, ETA.

A driver thread watches the table folder: workers' Parquet files land there as their
batches finish, so the count is what is really written, not what was dispatched. Each file is read once (its
counted columns), and the folder is listed every second, or less often where a listing takes longer (a
folder of hundreds of thousands of files, an object store): never more than a tenth of the thread's time.
The same thread enforces the error limit: when it is passed, it records why and
interrupts the thread that runs the sweep (the main thread, or a model's thread when several
models run at once), which stops the Ray Data execution. While no node can hold one actor
(an autoscaler still adding one), the line says so, and after ``--wait-for-resources`` the
sweep stops with ``fatal`` set.

Where stderr is a terminal, the line is a live bar instead (``_Bar``, tqdm: one bar per model, redrawn
every second); elsewhere (a pipe, a file, ``LONGSWEEP_PROGRESS=lines``) a plain line every ``every_s``. The
last line of a model is the plain line in both cases.

``ticker(label)`` prints a line every few seconds while a command plans, before any Progress starts.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pyarrow.compute as pc
import pyarrow.parquet as pq

from longsweep.runtime.error_limit import ErrorLimit
from longsweep.store import Loc, loc, parquet_files
from longsweep.runtime.signals import interruptible, raise_in_thread

LIST_SHARE = 10  # the next poll waits at least this many times as long as the listings take
LIST_SAMPLES = 3  # ... judged by the quickest of the last this many: one listing slowed by a busy moment (the
# actors starting on the same cores) is not a slow folder, and a 10x wait after it let a whole sweep finish
# before the error limit acted
_started = threading.Event()  # a Progress of this process has started: planning is over
_slots_lock = threading.Lock()
_slots: set[int] = set()  # the terminal lines that live bars hold (several models at once: one line each)


def _parquet_names(d: Loc) -> list[str]:
    try:
        return [f.name for f in parquet_files(d)]
    except OSError:  # an object store that did not answer this time: the next poll asks again
        return []


class _Stream:
    """tqdm's file: each write looks ``sys.stderr`` up again (see ``Progress.stream``). One per stream, shared
    by the bars on it, so that a line written above them clears and redraws all of them."""

    _of: dict[int, "_Stream"] = {}

    def __init__(self, stream):
        self.fixed = stream

    @classmethod
    def of(cls, stream) -> "_Stream":
        with _slots_lock:
            return cls._of.setdefault(id(stream), cls(stream))

    @property
    def out(self):
        return self.fixed or sys.stderr

    def write(self, s: str) -> int:
        return self.out.write(s)

    def flush(self) -> None:
        self.out.flush()

    def fileno(self) -> int:  # tqdm reads the terminal's width from it
        return self.out.fileno()

    def isatty(self) -> bool:
        return True


class _Bar:
    """One model's live bar on the terminal: rows done/total, errors, tokens/s, elapsed and ETA."""

    def __init__(self, p: "Progress"):
        from tqdm import tqdm
        with _slots_lock:
            self.slot = min(set(range(len(_slots) + 1)) - _slots)
            _slots.add(self.slot)
        self.p, self.file = p, _Stream.of(p._stream)
        self.bar = tqdm(total=p.total, initial=p.done, desc=f"[longsweep] {p.model or 'rows'}", file=self.file,
                        position=self.slot, leave=False, dynamic_ncols=True, unit="row", mininterval=0.5,
                        bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}")

    def update(self) -> None:
        p = self.p
        el = time.perf_counter() - p.t0
        note = p.waiter.note() if p.waiter is not None else None
        self.bar.n = min(p.done, p.total)
        self.bar.set_postfix_str(f"errors {p.errors}  {p.tokens / el if el > 0 else 0:.1f} tok/s"
                                 + (f"  -- {note}" if note else ""), refresh=False)
        self.bar.refresh()

    def write(self, text: str) -> None:
        """A line above the bars (they are redrawn below it)."""
        self.bar.write(text, file=self.file)

    def close(self) -> None:
        self.bar.close()
        with _slots_lock:
            _slots.discard(self.slot)


class Progress:
    def __init__(self, table_dir: Loc | Path | str, *, total: int, already: set[str] | int, every_s: float = 5.0, stream=None,
                 limit: ErrorLimit | None = None, poll_s: float = 1.0, waiter=None, model: str | None = None):
        self.model = model  # several models write one table at once: count this model's rows only
        self.dir, self.total, self.every, self.poll_s = loc(table_dir), total, every_s, poll_s
        self.limit = limit or ErrorLimit()
        self.waiter = waiter  # feasibility.ResourceWait, or None
        self.stop_reason: str | None = None
        self.fatal: str | None = None  # why the sweep cannot go on (no node joined in time)
        self.seen: set[str] = set(_parquet_names(self.dir))  # earlier runs' files are not this run's progress
        self.done = self.errors = self.tokens = 0
        self._list_times: collections.deque[float] = collections.deque(maxlen=LIST_SAMPLES)
        self.already = already if isinstance(already, int) else len(already)
        self.t0 = time.perf_counter()
        self._stream = stream
        self._stop = threading.Event()
        self._lk = threading.Lock()  # the limit's interrupt and __exit__'s stop: never both
        self._thread = threading.Thread(target=self._loop, daemon=True, name="progress")
        self._owner: int | None = None
        self._reg = interruptible()
        self._bar: _Bar | None = None

    @property
    def stream(self):
        # looked up at each write, never kept: while llama.cpp loads a vocabulary in another thread,
        # sys.stderr is its /dev/null for a moment, and a stream kept then would stay silent for good
        return self._stream or sys.stderr

    def __enter__(self) -> "Progress":
        self._owner = threading.get_ident()
        self._reg.__enter__()  # a signal interrupts this thread too when it is not the main one
        _started.set()
        from longsweep.runtime.quiet import live_terminal
        if live_terminal(self.stream):
            self._bar = _Bar(self)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lk:  # once the write has ended, the limit can no longer interrupt this thread
            self._stop.set()
        self._thread.join(timeout=10)
        self._reg.__exit__(None, None, None)
        self.poll()
        self.say(self.line())
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def say(self, text: str) -> None:
        """One line of ours: above the live bars when there are some."""
        if self._bar is not None:
            self._bar.write(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def poll(self) -> None:
        t = time.perf_counter()
        names = _parquet_names(self.dir)
        self._list_times.append(time.perf_counter() - t)  # what a listing costs (``back_off``)
        for name in names:
            if name in self.seen:
                continue
            try:
                f = self.dir / name
                with pq.ParquetFile(f.path, filesystem=f.fs) as f:  # only the counted columns: review texts are large
                    by_model = self.model is not None and "model" in f.schema_arrow.names
                    t = f.read(columns=["status", "completion_tokens"] + (["model"] if by_model else []))
            except FileNotFoundError:  # compacted or quarantined meanwhile
                self.seen.add(name)
                continue
            except Exception:  # noqa: BLE001 - a file still being written: read it next time
                continue
            self.seen.add(name)
            if "model" in t.column_names:
                t = t.filter(pc.equal(t.column("model"), self.model))
            self.done += t.num_rows
            self.errors += sum(s != "ok" for s in t.column("status").to_pylist())
            self.tokens += sum(n or 0 for n in t.column("completion_tokens").to_pylist())

    def back_off(self) -> float:
        """The wait before the next poll: ``poll_s``, or LIST_SHARE times what a listing costs where the last
        LIST_SAMPLES listings all took that long (a folder of very many files, a slow object store)."""
        if len(self._list_times) < LIST_SAMPLES:
            return self.poll_s
        return max(self.poll_s, LIST_SHARE * min(self._list_times))

    def line(self) -> str:
        el = time.perf_counter() - self.t0
        rate = self.done / el if el > 0 else 0.0
        left = self.total - self.done
        eta = f"{left / rate:.0f}s" if rate > 0 and left > 0 else ("0s" if left <= 0 else "?")
        note = self.waiter.note() if self.waiter is not None else None
        return (f"[longsweep] rows {self.done}/{self.total} (+{self.already} done before)  errors {self.errors}  "
                f"{self.tokens / el if el > 0 else 0:.1f} tok/s  elapsed {el:.0f}s  ETA {eta}"
                + (f"  ({self.model})" if self.model else "") + (f"  -- {note}" if note else ""))

    def check_limit(self) -> str | None:
        if self.stop_reason is None:
            self.stop_reason = self.limit.exceeded(rows=self.done, errors=self.errors, total=self.total)
        return self.stop_reason

    def check_wait(self) -> str | None:
        if self.waiter is None or self.fatal is not None:
            return self.fatal
        was = self.waiter.note() is not None
        self.waiter.poll()
        if not was and self.waiter.note() is not None:  # the wait began: say so at once
            self.say(self.line())
        self.fatal = self.waiter.expired()
        return self.fatal

    def _interrupt(self, why: str) -> None:
        self.say(f"[longsweep] stopping: {why}")
        # the sweep's blocking write ends with KeyboardInterrupt in the thread that runs it
        raise_in_thread(self._owner or threading.main_thread().ident, KeyboardInterrupt)

    def _loop(self) -> None:
        last, wait = time.perf_counter(), self.poll_s
        while not self._stop.wait(wait):
            self.poll()
            # a folder of many files (or a slow store's listing) is listed less often: at most a tenth of the
            # time; reading the new files is not what grows with the folder, and is not counted
            wait = self.back_off()
            if self.check_limit() or self.check_wait():
                with self._lk:
                    if not self._stop.is_set():
                        self._interrupt(self.stop_reason or self.fatal or "")
                return
            if self._bar is not None:
                self._bar.update()
            elif time.perf_counter() - last >= self.every:
                last = time.perf_counter()
                self.say(self.line())


@contextlib.contextmanager
def ticker(label: str, *, every_s: float = 4.0, stream=None) -> Iterator[None]:
    """``[longsweep] <label> (Ns)`` at once and then every ``every_s`` until a Progress starts or the block
    ends: a long plan (100,000 story runs) is never a silent terminal."""
    stop = threading.Event()
    _started.clear()
    t0 = time.perf_counter()

    def loop() -> None:
        while True:
            if _started.is_set():
                return
            out = stream or sys.stderr  # at each write (see Progress.stream)
            out.write(f"[longsweep] {label} ({time.perf_counter() - t0:.0f}s)\n")
            out.flush()
            if stop.wait(every_s):
                return

    th = threading.Thread(target=loop, daemon=True, name="plan-ticker")
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(timeout=2)
