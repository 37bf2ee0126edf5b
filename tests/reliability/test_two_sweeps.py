"""Two sweeps on one machine without --address each finish (issue 15.10): a sweep never joins another
sweep's embedded Ray (Ray's `address="auto"` would, and die with it), only a head started with `ray start`."""

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from clirun import ROOT, env, prompts, start, wait_for
from helpers import free_port, stop_head

from longsweep.errors import ExitCode
from longsweep.runtime.cluster import answers, ray_start_address

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_a_second_sweep_starts_its_own_ray_and_outlives_the_first(smollm, tmp_path):
    first_p, second_p = prompts(tmp_path / "a.jsonl", 3, prefix="a"), prompts(tmp_path / "b.jsonl", 8, prefix="b")
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = start("generate", first_p, "--model", "smollm2-135m", "--max-tokens", "8", "--out", tmp_path / "A",
              log=log_a)
    assert wait_for(lambda: "ray: " in log_a.read_text(), 300), log_a.read_text()[-2000:]
    b = start("generate", second_p, "--model", "smollm2-135m", "--max-tokens", "16", "--out", tmp_path / "B",
              log=log_b)
    rc_a, rc_b = a.wait(timeout=600), b.wait(timeout=900)
    text_a, text_b = log_a.read_text(), log_b.read_text()
    assert (rc_a, rc_b) == (ExitCode.OK, ExitCode.OK), text_a[-2000:] + "\n----\n" + text_b[-3000:]
    head = ray_start_address()
    if not (head and answers(head)):  # no `ray start` head on this machine: each has its own embedded Ray
        assert "ray: started an embedded local Ray" in text_a and "ray: started an embedded local Ray" in text_b
    assert "address=auto" not in text_a + text_b
    assert sorted(pq.read_table(tmp_path / "B" / "generations").column("key").to_pylist()) == \
        [f"b{i:02d}/smollm2-135m" for i in range(8)]


def test_a_stale_ray_start_record_is_not_followed(tmp_path):
    (tmp_path / "ray_current_cluster").write_text("127.0.0.1:9")  # a head that is gone (port 9: discard)
    assert ray_start_address(str(tmp_path)) == "127.0.0.1:9"
    assert not answers("127.0.0.1:9", timeout_s=1)
    assert ray_start_address(str(tmp_path / "nowhere")) is None


@pytest.mark.slow
def test_a_head_started_with_ray_start_is_joined_and_a_dead_one_is_not(smollm, tmp_path):
    """The positive side: `ray start --head` on this machine is found without --address. RAY_TMPDIR keeps
    this test's head out of the machine's default Ray folder (other sweeps here must not find it)."""
    temp = Path(f"/tmp/lsrs-{secrets.token_hex(3)}")
    temp.mkdir()
    e = {**env(), "RAY_TMPDIR": str(temp), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    ray = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [ray, "start", "--head", "--port", str(free_port()), "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
         "--include-dashboard", "false", "--ray-client-server-port", str(free_port()), "--disable-usage-stats",
         "--block"], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    p = prompts(tmp_path / "p.jsonl", 2)
    run = lambda out: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "longsweep.cli", "generate", str(p), "--model", "smollm2-135m", "--max-tokens", "4",
         "--out", str(tmp_path / out)], cwd=ROOT, env=e, capture_output=True, text=True, timeout=600)
    try:
        assert wait_for(lambda: (temp / "ray" / "ray_current_cluster").exists(), 120), "the head did not start"
        r = run("joined")
        assert r.returncode == ExitCode.OK, r.stderr[-3000:]
        assert "ray: connected to the running local cluster at " in r.stderr and "(started with `ray start`)" \
            in r.stderr, r.stderr[-3000:]
    finally:
        stop_head(head, temp)
    temp.mkdir(exist_ok=True)
    (temp / "ray").mkdir(exist_ok=True)
    (temp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")  # a head that is gone
    try:
        r = run("alone")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert r.returncode == ExitCode.OK and "ray: started an embedded local Ray" in r.stderr, r.stderr[-3000:]
