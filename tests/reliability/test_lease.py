"""One writer per sweep folder: the lease, its takeover rules, and two real runs into one folder (issue 15.1)."""

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from clirun import no_traceback, prompts, start

from longsweep.errors import ExitCode, SweepBusyError
from longsweep.store import lease


def test_a_second_run_is_refused_while_the_first_holds_the_lease(tmp_path):
    with lease.hold(tmp_path / "s", command="longsweep generate x") as held:
        info = json.loads(held.path.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["started_at"]
        with pytest.raises(SweepBusyError) as e:
            lease.acquire(tmp_path / "s")
        msg = str(e.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}" in msg and "longsweep generate x" in msg
        assert e.value.exit_code == ExitCode.BAD_INPUT
    assert not (tmp_path / "s" / lease.LEASE_FILE).exists()
    lease.acquire(tmp_path / "s").release()  # free again


def _fake_lease(d, **info):
    d.mkdir(parents=True, exist_ok=True)
    (d / lease.LEASE_FILE).write_text(json.dumps({"token": "t0", **info}))


def test_a_lease_whose_process_is_gone_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_lease(tmp_path, host=socket.gethostname(), pid=dead.pid, started_at="earlier")
    held = lease.acquire(tmp_path)
    assert held.held() and json.loads(held.path.read_text())["pid"] == os.getpid()
    assert f"process {dead.pid} is gone" in caplog.text
    held.release()


def test_a_reused_pid_does_not_keep_a_lease(tmp_path):
    # the pid is alive (this very process) but started after the lease was written: not its holder
    _fake_lease(tmp_path, host=socket.gethostname(), pid=os.getpid(), proc_started=1.0)
    lease.acquire(tmp_path).release()


def test_a_lease_on_another_host_holds_until_it_ages(tmp_path):
    _fake_lease(tmp_path, host="elsewhere", pid=1)
    with pytest.raises(SweepBusyError, match="pid 1 on elsewhere"):
        lease.acquire(tmp_path)
    old = time.time() - lease.STALE_AFTER_S - 5
    os.utime(tmp_path / lease.LEASE_FILE, (old, old))
    lease.acquire(tmp_path).release()


def test_the_holder_renews_its_lease(tmp_path):
    with lease.hold(tmp_path, renew_every_s=0.1) as held:
        old = time.time() - 100
        os.utime(held.path, (old, old))
        time.sleep(0.5)
        assert time.time() - held.path.stat().st_mtime < 5


def _race(d, q, go, done):
    go.wait(60)  # all start together
    try:
        held = lease.acquire(d)
        q.put("won")
        done.wait(60)  # hold it until every contender has tried
        held.release()
    except SweepBusyError:
        q.put("busy")


def test_runs_racing_for_a_stale_lease_have_one_winner(tmp_path):
    _fake_lease(tmp_path, host="elsewhere", pid=1)
    old = time.time() - lease.STALE_AFTER_S - 5
    os.utime(tmp_path / lease.LEASE_FILE, (old, old))
    ctx = mp.get_context("spawn")
    q, go, done = ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [ctx.Process(target=_race, args=(tmp_path, q, go, done)) for _ in range(4)]
    for p in procs:
        p.start()
    go.set()
    try:
        results = sorted(q.get(timeout=120) for _ in procs)
    finally:
        done.set()
        for p in procs:
            p.join(60)
    assert results == ["busy", "busy", "busy", "won"]


@pytest.mark.integration
@pytest.mark.slow
def test_two_runs_into_one_folder_one_works_one_is_refused(smollm, tmp_path):
    """Issue 15.1: `for i in 1 2; do longsweep generate p8.jsonl --out X & done` gave 16 rows for 8 keys."""
    p8 = prompts(tmp_path / "p8.jsonl", 8)
    out = tmp_path / "x"
    args = ("generate", p8, "--model", "smollm2-135m", "--max-tokens", "8", "--out", out)
    runs = [start(*args, log=tmp_path / f"run{i}.log") for i in (1, 2)]
    codes = [r.wait(timeout=600) for r in runs]
    logs = [(tmp_path / f"run{i}.log").read_text() for i in (1, 2)]
    assert sorted(codes) == [ExitCode.OK, ExitCode.BAD_INPUT], logs
    refused = logs[codes.index(ExitCode.BAD_INPUT)]
    no_traceback(refused)
    assert f"error: {out} is in use by another run: pid " in refused and "ray:" not in refused
    keys = pq.read_table(out / "generations").column("key").to_pylist()
    assert sorted(keys) == [f"q{i:02d}/smollm2-135m" for i in range(8)]
    assert not (out / lease.LEASE_FILE).exists(), "the lease was not given back"
