"""SIGINT and SIGTERM sent to the real driver mid-sweep (issue 15.8): a clean stop, one line, exit 130 / 143,
the manifest says interrupted, no process of the sweep is left, and a rerun finishes with every key once."""

import json
import os
import signal

import psutil
import pyarrow.parquet as pq
import pytest
from clirun import cli, last_line, no_traceback, parquet_count, prompts, start, wait_for

from longsweep.errors import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N = 12


@pytest.mark.parametrize("sig, code, to_group", [(signal.SIGINT, ExitCode.INTERRUPTED, True),
                                                 (signal.SIGTERM, ExitCode.TERMINATED, False)],
                         ids=["ctrl-c-to-the-terminal-group", "sigterm-to-the-driver"])
def test_signal_mid_sweep_stops_cleanly_and_a_rerun_finishes(smollm, tmp_path, sig, code, to_group):
    p = prompts(tmp_path / "p.jsonl", N)
    out = tmp_path / "out"
    args = ("generate", p, "--model", "smollm2-135m", "--max-tokens", "16", "--batch-items", "2", "--out", out)
    log = tmp_path / "driver.log"
    proc = start(*args, log=log)
    try:
        assert wait_for(lambda: parquet_count(out / "generations") >= 2, 420), log.read_text()[-3000:]
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        (os.killpg if to_group else os.kill)(proc.pid, sig)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert rc == code, text[-3000:]
    no_traceback(text)
    line = last_line(text)
    assert line.startswith(f"interrupted: {sig.name}: the sweep stopped cleanly;") and "rows written by this run" \
        in line, text[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["latest"]["interrupted"] == sig.name
    written = pq.read_table(out / "generations").num_rows
    assert 0 < manifest["latest"]["rows_this_run"] == written < N
    assert wait_for(lambda: not [c for c in children if psutil.pid_exists(c)
                                 and psutil.Process(c).status() != psutil.STATUS_ZOMBIE], 30), \
        "processes of the interrupted sweep (actors, its Ray) are still running"
    assert not (out / "lease.json").exists()

    again = cli(*args)
    assert again.returncode == ExitCode.OK, again.stderr[-3000:]
    assert f"items: {N} ({written} already done, {N - written} run now)" in again.stdout
    keys = pq.read_table(out / "generations").column("key").to_pylist()
    assert sorted(keys) == sorted(set(keys)) and len(keys) == N
