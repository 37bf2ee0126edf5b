import io

import pyarrow as pa
import pyarrow.parquet as pq

from longsweep.runtime.progress import Progress


def test_progress_counts_rows_written_after_start(tmp_path):
    pq.write_table(pa.table({"status": ["ok"], "completion_tokens": [5]}), tmp_path / "old.parquet")
    out = io.StringIO()
    with Progress(tmp_path, total=3, already={"k0"}, every_s=60, stream=out) as p:
        pq.write_table(pa.table({"status": ["ok", "error"], "completion_tokens": [10, None]}), tmp_path / "a.parquet")
    assert (p.done, p.errors, p.tokens) == (2, 1, 10)
    line = out.getvalue().strip().splitlines()[-1]
    assert "rows 2/3 (+1 done before)" in line and "errors 1" in line and "ETA" in line


class _Waiting:
    """A ResourceWait stand-in: waiting from the first poll, expired after `polls` polls."""

    def __init__(self, polls):
        self.polls, self.n = polls, 0

    def poll(self):
        self.n += 1

    def note(self):
        return "waiting for the autoscaler (gpu-node) to add a node with GPU 1: 3s of --wait-for-resources 9" \
            if self.n else None

    def expired(self):
        return "no node joined within --wait-for-resources 9 s" if self.n >= self.polls else None


def test_waiting_for_resources_is_on_the_line_and_the_deadline_stops_the_sweep(tmp_path):
    import threading
    import time
    out = io.StringIO()
    p = Progress(tmp_path, total=2, already=set(), every_s=60, stream=out, poll_s=0.05, waiter=_Waiting(3))
    stopped = threading.Event()

    def sweep():  # stands for Ray Data's blocking write in a model's thread (it polls every 10 ms)
        try:
            with p:
                for _ in range(3000):
                    time.sleep(0.01)
        except KeyboardInterrupt:
            stopped.set()

    th = threading.Thread(target=sweep)
    th.start()
    th.join(timeout=20)
    assert stopped.is_set(), "the deadline did not interrupt the sweep's thread"
    text = out.getvalue()
    assert "-- waiting for the autoscaler (gpu-node)" in text
    assert "stopping: no node joined within --wait-for-resources 9 s" in text
    assert p.fatal and p.stop_reason is None


def test_feasibility_arithmetic():
    from longsweep.config import get_model
    from longsweep.runtime.feasibility import actor_demand, fits, fmt
    spec = get_model("smollm2-135m")
    gpu = spec.model_copy(update={"resources": spec.resources.model_copy(update={"num_gpus": 1, "memory_gb": 2,
                                                                                "custom": {"slot": 1}})})
    need = actor_demand(gpu)
    assert need == {"CPU": 1.0, "GPU": 1.0, "memory": 2 * 2**30, "slot": 1.0}
    assert not fits(need, {"CPU": 8, "memory": 64 * 2**30, "slot": 1})
    assert fits(need, {"CPU": 8, "GPU": 1, "memory": 64 * 2**30, "slot": 2})
    assert fmt(need) == "CPU 1, GPU 1, memory 2.0 GiB, slot 1"


def test_autoscaler_node_types_from_its_config(tmp_path):
    from longsweep.runtime.feasibility import types_from_file
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    types = {t.name: t for t in types_from_file(root / "cluster.yaml")}
    assert types["head"].max_count == 0  # the head is never added
    assert any((t.resources or {}).get("GPU") == 1 and t.max_count > 0 for t in types.values())


def test_ticker_speaks_at_once_and_stops_when_a_progress_starts(tmp_path):
    import time
    from longsweep.runtime.progress import ticker
    out = io.StringIO()
    with ticker("planning stories", every_s=0.1, stream=out):
        time.sleep(0.35)
        n = out.getvalue().count("[longsweep] planning stories")
        with Progress(tmp_path, total=1, already=set(), every_s=60, stream=io.StringIO()):
            time.sleep(0.35)
    assert n >= 2 and out.getvalue().startswith("[longsweep] planning stories (0s)")
    assert out.getvalue().count("[longsweep] planning stories") <= n + 1


def test_the_line_goes_to_the_stderr_of_the_moment_it_is_written(tmp_path, monkeypatch):
    """A Progress made while another thread's llama.cpp load had sys.stderr on /dev/null still speaks."""
    import sys
    gone, back = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", gone)
    p = Progress(tmp_path, total=1, already=set(), every_s=60)
    monkeypatch.setattr(sys, "stderr", back)
    with p:
        pq.write_table(pa.table({"status": ["ok"], "completion_tokens": [3]}), tmp_path / "a.parquet")
    assert gone.getvalue() == "" and "rows 1/1" in back.getvalue()


def test_the_limit_cannot_interrupt_once_the_write_has_ended(tmp_path):
    """The stop and the limit's interrupt share a lock: when the write ends while the loop polls, the
    error the poll then finds does not interrupt the thread (which has left the sweep by then)."""
    import threading
    from longsweep.runtime.error_limit import ErrorLimit
    hit = []

    def owner():
        try:
            for _ in range(100):
                threading.Event().wait(0.02)
        except KeyboardInterrupt:
            hit.append(True)

    t = threading.Thread(target=owner)
    t.start()
    out = io.StringIO()

    class EndsWhilePolling(Progress):
        def poll(self):
            pq.write_table(pa.table({"status": ["error"], "completion_tokens": [None]}), tmp_path / "e.parquet")
            super().poll()
            with self._lk:
                self._stop.set()  # what __exit__ does, between this poll and the limit's check

    p = EndsWhilePolling(tmp_path, total=4, already=set(), every_s=60, stream=out, poll_s=0.01,
                         limit=ErrorLimit(max_errors=0, min_rows=1))
    p._owner = t.ident
    p._loop()
    t.join()
    assert p.stop_reason is not None and hit == [] and "stopping" not in out.getvalue()


def test_a_slow_listing_is_polled_less_often_and_one_slow_moment_is_not(tmp_path, monkeypatch):
    """Listings that keep taking 50 ms (a folder of many files, an object store) are followed by waits of ten
    times as long, not by the next poll 1 ms later: the listing takes at most about a tenth of the thread's time.
    One listing slowed by a busy moment (actors starting on the same cores) changes nothing: a 10x wait after it
    once let a whole sweep finish before its error limit acted."""
    import time

    from longsweep.runtime import progress as prog

    calls = []
    slow = {"every": True}

    def listing(d):
        calls.append(time.perf_counter())
        if slow["every"] or len(calls) == 1:
            time.sleep(0.05)
        return []

    monkeypatch.setattr(prog, "_parquet_names", listing)

    def polls(seconds):
        calls.clear()
        p = Progress(tmp_path, total=1, already=0, every_s=60, stream=io.StringIO(), poll_s=0.001)
        calls.clear()  # the listing of the files already there
        p._thread.start()
        time.sleep(seconds)
        p._stop.set()
        p._thread.join()
        return [b - a for a, b in zip(calls, calls[1:])]

    gaps = polls(1.4)
    # three quick polls to learn the folder, then waits of 10 x 50 ms; without the back-off: about 27 polls
    assert 3 <= len(gaps) + 1 <= 6 and all(g >= 0.5 for g in gaps[prog.LIST_SAMPLES - 1:]), gaps
    slow["every"] = False  # only the first listing is slow
    gaps = polls(0.3)
    assert len(gaps) >= 20 and max(gaps[1:]) < 0.05, gaps


def test_a_terminal_gets_one_live_bar_per_model_and_a_pipe_plain_lines(tmp_path, monkeypatch):
    """On a terminal (a pty here) each model's Progress draws a tqdm bar on a line of its own, redrawn in
    place (carriage returns, no new line per update), and ends with the plain line; LONGSWEEP_PROGRESS=lines
    (or a pipe) keeps the plain lines."""
    import fcntl
    import os
    import pty
    import struct
    import termios
    import threading
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    tty = os.fdopen(slave, "w", buffering=1)
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                chunks.append(os.read(master, 65536))
            except OSError:
                return
    threading.Thread(target=drain, daemon=True).start()
    monkeypatch.delenv("LONGSWEEP_PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    with Progress(tmp_path, total=2, already=0, stream=tty, poll_s=0.05, every_s=0.01, model="m1") as a, \
            Progress(tmp_path, total=1, already=0, stream=tty, poll_s=0.05, every_s=0.01, model="m2") as b:
        assert a._bar is not None and b._bar is not None and a._bar.slot != b._bar.slot
        pq.write_table(pa.table({"status": ["ok", "ok"], "completion_tokens": [3, 4], "model": ["m1", "m1"]}),
                       tmp_path / "a.parquet")
        time.sleep(0.5)
    tty.close()
    time.sleep(0.2)
    out = b"".join(chunks).decode(errors="replace")
    assert "[longsweep] m1 " in out and "2/2 [" in out and "[longsweep] m2 " in out and "0/1 [" in out
    assert "\r" in out and out.count("[longsweep] rows") == 2  # redrawn in place; the plain line once, at the end
    assert "rows 2/2 (+0 done before)" in out and "(m1)" in out and "rows 0/1" in out
    monkeypatch.setenv("LONGSWEEP_PROGRESS", "lines")
    plain = io.StringIO()
    plain.isatty = lambda: True
    with Progress(tmp_path / "x", total=1, already=0, stream=plain) as c:
        assert c._bar is None


def test_raylet_notices_go_to_the_log_not_the_terminal(capsys):
    """A node lost, a task retried: Ray prints these as ``(raylet) ...`` on stdout; a quiet sweep logs them
    (its own line says what happened) and leaves every other printed line as Ray prints it."""
    import logging
    import ray._private.worker as rw
    from longsweep.runtime.quiet import quiet_ray
    quiet_ray()
    quiet_ray()  # idempotent: wrapped once
    logged: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: logged.append(record.getMessage())  # the ray logger does not propagate
    ray_logger = logging.getLogger("ray")
    ray_logger.addHandler(handler)
    level, ray_logger.level = ray_logger.level, logging.INFO
    try:
        rw.print_to_stdstream({"lines": ["A node died"], "pid": "raylet", "is_err": False}, ignore_prefix=False)
        rw.print_to_stdstream({"lines": ["a worker's own line"], "pid": 123, "is_err": False}, ignore_prefix=True)
    finally:
        ray_logger.removeHandler(handler)
        ray_logger.level = level
    out = capsys.readouterr().out
    assert "A node died" not in out and "a worker's own line" in out
    assert logged == ["(raylet) A node died"]


def test_the_limit_stops_a_main_thread_that_inherited_sigint_ignored(tmp_path):
    """A sweep that a script started with `&` inherits SIGINT ignored, so Python has no SIGINT
    handler and ``_thread.interrupt_main`` does nothing: the error limit's stop printed its line and the sweep
    ran on to its end. A real process with SIGINT ignored: the limit must still interrupt its main thread."""
    import signal
    import subprocess
    import sys
    script = f"""
import signal, time
import pyarrow as pa, pyarrow.parquet as pq
from longsweep.runtime.error_limit import ErrorLimit
from longsweep.runtime.progress import Progress
assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
p = Progress({str(tmp_path)!r}, total=4, already=0, every_s=60, poll_s=0.01, limit=ErrorLimit(max_errors=0))
try:
    with p:
        pq.write_table(pa.table({{"status": ["error"], "completion_tokens": [None]}}), {str(tmp_path / "e.parquet")!r})
        for _ in range(2000):  # as Ray Data's write polls its queue: 20 s at most
            time.sleep(0.01)
    print("ran to the end")
except KeyboardInterrupt:
    print("interrupted:", p.stop_reason)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert "interrupted: 1 error rows > --max-errors 0" in r.stdout, r.stdout + r.stderr
