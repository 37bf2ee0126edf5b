"""`ray job submit` to a real head started with `ray start --head` on 127.0.0.1: the same review sweep."""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import free_port, stop_head

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
from longsweep.papers.samples import make_samples

pytestmark = pytest.mark.integration
RAY = str(Path(sys.executable).parent / "ray")


def test_review_sweep_through_ray_job_submit(tmp_path):
    papers = make_samples(tmp_path / "papers", n_papers=1, hidden_in_first=False)
    cfg = tmp_path / "review.yaml"
    cfg.write_text("completion_reserve: 128\nrepetition_penalty: 1.3\n")
    out = tmp_path / "out"
    port, dash = free_port(), free_port()
    temp = Path(f"/tmp/lsjob-{secrets.token_hex(3)}")  # short: Ray's socket paths live under it
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    start = [RAY, "start", "--head", "--port", str(port), "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
             "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash), "--temp-dir", str(temp),
             "--dashboard-agent-listen-port", str(free_port()), "--ray-client-server-port", str(free_port()),
             "--disable-usage-stats", "--block"]
    # `--block` keeps the head's processes in our own process group: stopping it stops this head only
    # (`ray stop` would stop every Ray on the machine, the test session's own included)
    head = subprocess.Popen(start, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 120
        while subprocess.run([RAY, "job", "list", "--address", address], env=env, capture_output=True,
                             timeout=60).returncode != 0:
            assert head.poll() is None, "ray start --head exited"
            assert time.time() < deadline, "the head did not come up in 120 s"
            time.sleep(2)
        sub = subprocess.run(
            [RAY, "job", "submit", "--address", address, "--working-dir", str(PROJECT_ROOT),
             "--submission-id", "ls-review", "--",
             sys.executable, "jobs/review_sweep.py", str(papers), "--model", "smollm2-135m", "--window", "2048",
             "--versions", "v1,v2", "--runs", "1", "--config", str(cfg), "--out", str(out)],
            env=env, capture_output=True, text=True, timeout=900)
        assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-3000:]
        status = subprocess.run([RAY, "job", "status", "--address", address, "ls-review"], env=env,
                                capture_output=True, text=True, timeout=60)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", status.stdout + status.stderr)
        assert "SUCCEEDED" in plain or "Job 'ls-review' succeeded" in plain, plain
        logs = subprocess.run([RAY, "job", "logs", "--address", address, "ls-review"], env=env,
                              capture_output=True, text=True, timeout=60).stdout
        assert "connected to the" in logs  # the job used the running cluster, not an embedded Ray
        rows = pq.read_table(out / "reviews").to_pylist()
        assert sorted(r["key"] for r in rows) == ["sample-01/v1/run1/smollm2-135m", "sample-01/v2/run1/smollm2-135m"]
    finally:
        stop_head(head, temp)
