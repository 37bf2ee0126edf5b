"""The disk fills up during a sweep (issue 15.8): one line, exit 3, the manifest written or its failure stated,
no temporary left behind; with space again, a rerun finishes with every key once.

The sweep folder is a 2 MiB tmpfs (mounting one needs root: skipped with the reason where it cannot be made).
Once the first rows are on it, the test fills it to the last byte."""

import json
import subprocess

import pandas as pd
import pytest
from clirun import cli, last_line, parquet_count, prompts, start, wait_for

from longsweep.errors import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N = 12


@pytest.fixture
def small_disk(tmp_path):
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a 2 MiB tmpfs here (mount needs root): {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def _fill(d):
    with open(d / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_disk_mid_sweep_is_one_line_exit_3_and_a_rerun_finishes(smollm, small_disk, tmp_path):
    p = prompts(tmp_path / "p.jsonl", N)
    out = small_disk / "out"
    args = ("generate", p, "--model", "smollm2-135m", "--max-tokens", "16", "--batch-items", "2", "--out", out)
    log = tmp_path / "driver.log"
    proc = start(*args, log=log)
    assert wait_for(lambda: parquet_count(out / "generations") >= 1, 420), log.read_text()[-3000:]
    _fill(small_disk)
    rc = proc.wait(timeout=420)
    text = log.read_text()
    assert rc == ExitCode.FATAL, text[-3000:]
    line = last_line(text)
    assert line.startswith("fatal: ") and "No space left on device" in line, text[-3000:]
    assert ("the manifest records it" in line or "the manifest could not be written either" in line
            or "the manifest" not in line), line
    if "the manifest records it" in line:
        assert json.loads((out / "manifest.json").read_text())["latest"]["fatal"]
    # the driver raised no traceback of its own (Ray Data's stay in its log file)
    assert "Traceback (most recent call last)" not in text, text[-4000:]
    assert not [q for q in out.rglob("*") if q.name.endswith(".tmp")], sorted(map(str, out.rglob("*")))
    assert not (out / "lease.json").exists()

    (small_disk / "filler").unlink()
    again = cli(*args)
    assert again.returncode == ExitCode.OK, again.stderr[-3000:]
    keys = pd.read_parquet(out / "generations")["key"]  # a file cut short is in quarantine/, not in the table
    assert keys.is_unique and len(keys) == N
