"""cluster.yaml: Ray's own schema, Ray's images, the project installed from the synced folder, vLLM on GPU
workers only, Ray started with the token it copies; the README's cluster commands in the order typed."""

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _cfg() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "cluster.yaml").read_text())


def _ray_pin() -> str:
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [m.group(1) for d in deps if (m := re.fullmatch(r"ray\[[\w,]+\]==([\d.]+)", d))]
    return pin


def test_cluster_yaml_validates_against_rays_autoscaler_schema():
    from ray.autoscaler._private.util import validate_config
    cfg = _cfg()
    validate_config(cfg)  # raises on any schema error
    types = cfg["available_node_types"]
    assert types["gpu_1x"]["resources"]["GPU"] == 1 and types["gpu_4x"]["resources"]["GPU"] == 4
    assert cfg["idle_timeout_minutes"] > 0 and all("max_workers" in t for t in types.values())


def test_schema_check_can_fail():
    from ray.autoscaler._private.util import validate_config
    cfg = _cfg()
    cfg["available_node_types"]["gpu_1x"]["not_a_field"] = 1
    with pytest.raises(Exception):
        validate_config(cfg)


def test_nodes_run_rays_images_with_python_311_and_cuda_on_the_gpu_workers():
    docker, pin = _cfg()["docker"], _ray_pin()
    assert docker["head_image"] == f"rayproject/ray:{pin}-py311-cpu"
    assert re.fullmatch(rf"rayproject/ray:{re.escape(pin)}-py311-cu1\d\d", docker["worker_image"])
    assert "image" not in docker  # each of head and workers names its own


def test_project_is_installed_from_the_synced_folder_and_vllm_on_gpu_workers_only():
    cfg = _cfg()
    (remote,) = [r for r, local in cfg["file_mounts"].items() if local == "."]
    assert any(c.startswith(f"cd {remote} && ") and "pip install" in c and "'.[llama,s3]'" in c
               for c in cfg["setup_commands"])
    everywhere = " ".join(cfg["setup_commands"] + cfg["head_setup_commands"] + cfg["initialization_commands"])
    assert "vllm" not in everywhere
    assert any(re.search(r"'vllm==[\d.]+'", c) for c in cfg["worker_setup_commands"])
    types = cfg["available_node_types"]
    workers = [t for name, t in types.items() if name != cfg["head_node_type"]]
    assert workers and all(t["resources"].get("GPU", 0) > 0 for t in workers)  # worker setup = GPU nodes
    assert all("worker_setup_commands" not in t for t in workers)  # none overrides the vLLM install
    assert "GPU" not in types[cfg["head_node_type"]]["resources"]
    assert {".venv", ".venv-vllm", ".cache"} <= set(cfg["rsync_exclude"]) and ".gitignore" in cfg["rsync_filter"]


def test_ray_starts_on_every_node_with_the_token_the_launcher_copies():
    cfg = _cfg()
    assert cfg["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    for key, start in (("head_start_ray_commands", "ray start --head"), ("worker_start_ray_commands", "ray start")):
        (cmd,) = [c for c in cfg[key] if start in c]
        assert "RAY_AUTH_MODE=token" in cmd and "RAY_AUTH_TOKEN=$(cat ~/.ray/auth_token)" in cmd
        assert cmd.index("RAY_AUTH_TOKEN") < cmd.index(start)
    (head,) = [c for c in cfg["head_start_ray_commands"] if "--head" in c]
    assert "--dashboard-host=127.0.0.1" in head  # reached through `ray dashboard`'s SSH tunnel only


def _cluster_block() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("<!-- cluster -->", 1)[1].split("<!-- /cluster -->", 1)[0]
    blocks = [[ln.strip() for ln in b.replace("\\\n", " ").splitlines() if ln.strip()]
              for b in re.findall(r"```bash\n(.*?)```", section, re.S)]
    (block,) = [b for b in blocks if any(c.startswith("ray up") for c in b)]
    return block


def test_readme_cluster_commands_come_in_the_order_a_user_types_them():
    cmds = _cluster_block()

    def first(pred) -> int:
        hits = [i for i, c in enumerate(cmds) if pred(c)]
        assert hits, cmds
        return hits[0]

    token = first(lambda c: c.startswith("ray get-auth-token --generate"))
    export = first(lambda c: c.startswith("export ") and "RAY_AUTH_MODE=token" in c
                   and "RAY_AUTH_TOKEN=$(cat ~/.ray/auth_token)" in c)
    up = first(lambda c: shlex.split(c, comments=True)[:3] in (["ray", "up", "cluster.yaml"], ["ray", "up", "-y"]))
    tunnel = first(lambda c: c.startswith("ray dashboard cluster.yaml"))
    submit = first(lambda c: c.startswith("ray job submit --address http://127.0.0.1:8265"))
    down = first(lambda c: c.startswith("ray down") and "cluster.yaml" in c)
    assert token < export < up < tunnel < submit < down
    assert "cluster.yaml" in cmds[up]


def test_readme_cluster_model_fits_the_cluster_gpus():
    from longsweep.config import get_model
    from longsweep.memcheck import check_model
    cmds = _cluster_block()
    (submit,) = [shlex.split(c) for c in cmds if c.startswith("ray job submit")]
    model = submit[submit.index("--model") + 1]
    (check,) = [shlex.split(c, comments=True) for c in cmds if c.startswith("longsweep models --check")]
    assert check[check.index("--model") + 1] == model
    gpu_gb = float(check[check.index("--gpu-gb") + 1])
    sizes = {float(m.group(1)) for t in _cfg()["available_node_types"].values() for r in t["resources"]
             if (m := re.fullmatch(r"gpu_(\d+)gb", r))}
    assert sizes == {gpu_gb}, "the README checks the model against a GPU size the cluster does not have"
    assert check_model(get_model(model), gpu_gb).ok
    assert not check_model(get_model("default"), gpu_gb).ok  # the check can fail on these GPUs


def test_the_cluster_writes_to_a_bucket_set_in_one_place_and_the_readme_reads_it_there():
    cfg = _cfg()
    text = (PROJECT_ROOT / "cluster.yaml").read_text()
    (env,) = [o for o in cfg["docker"]["run_options"] if "LONGSWEEP_OUT=" in o]
    root = env.split("LONGSWEEP_OUT=", 1)[1]
    assert root.startswith("s3://") and text.count(root.split("/")[2]) == 1 + text.count("Replace " + root.split("/")[2])
    for t in cfg["available_node_types"].values():
        assert t["node_config"].get("IamInstanceProfile"), "every node reaches the bucket through its role"
    cmds = _cluster_block()
    assert not [c for c in cmds if "rsync-down" in c], "rows are in the bucket, not on the head's disk"
    (submit,) = [shlex.split(c) for c in cmds if c.startswith("ray job submit")]
    assert "--out" not in submit  # the bucket of cluster.yaml (LONGSWEEP_OUT)
    sid = submit[submit.index("--sweep-id") + 1]
    assert [c for c in cmds if c.startswith(f"longsweep report {root}/{sid}")]
