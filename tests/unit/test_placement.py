"""Per-model placement: plain resources for one-GPU models, a placement group of N bundles for N-GPU models."""

import pytest

from longsweep.config import ModelSpec, get_model
from longsweep.runtime.placement import actor_resources, bundles, remote_args_fn


def _spec(**over) -> ModelSpec:
    d = get_model("sea-e").model_dump()
    for k, v in over.items():
        d[k].update(v)
    return ModelSpec.model_validate(d)


def test_single_gpu_model_gets_plain_resources():
    s = _spec(resources={"num_gpus": 1, "num_cpus": 2, "memory_gb": 40, "custom": {"a100": 1}})
    assert bundles(s) is None
    assert actor_resources(s) == {"num_cpus": 2, "num_gpus": 1, "memory": 40 * 2**30, "resources": {"a100": 1}}
    assert remote_args_fn(s)() == {"max_restarts": 3, "max_task_retries": -1}  # retries: runtime/nodes.py


def test_llama_cpp_model_never_gets_a_placement_group():
    assert bundles(get_model("smollm2-135m")) is None


def test_tensor_parallel_model_gets_a_placement_group_of_n_gpus(ray_local):
    import ray
    s = _spec(vllm={"tensor_parallel_size": 4}, resources={"num_gpus": 4, "num_cpus": 2})
    assert bundles(s) == [{"GPU": 1.0, "CPU": 2.0}] + [{"GPU": 1.0, "CPU": 1.0}] * 3
    res = actor_resources(s)
    assert res["num_gpus"] is None and res["num_cpus"] == 2.0  # the actor uses bundle 0; vLLM's workers the GPUs
    args = remote_args_fn(s)()
    st = args["scheduling_strategy"]
    assert st.placement_group_capture_child_tasks and st.placement_group_bundle_index == 0
    pg = st.placement_group
    assert pg.bundle_specs == bundles(s) and ray.util.placement_group_table(pg)["strategy"] == "STRICT_PACK"
    ray.util.remove_placement_group(pg)  # this machine has no GPUs: the group stays pending until removed


def test_custom_resources_are_validated():
    from longsweep.config import ConfigError, validate, Resources
    with pytest.raises(ConfigError, match="custom"):
        validate(Resources, {"custom": {"x": "many"}}, "models.yaml: models.m.resources")


def test_placement_groups_of_a_sweep_are_removed_when_it_ends_or_their_actor_is_gone(ray_local):
    """Real placement groups on the local Ray (bundles that cannot be placed here stay PENDING; the test is
    about their removal): made per actor by Ray Data's hook, all removed by release(); a group whose actor
    died is removed by release_orphans() while the sweep runs."""
    from ray.util import placement_group_table
    from longsweep.runtime.placement import RemoteArgs
    s = _spec(vllm={"tensor_parallel_size": 2}, resources={"num_gpus": 2})
    args = RemoteArgs(s)
    made = [args() for _ in range(3)]
    pgs = [m["scheduling_strategy"].placement_group for m in made]
    assert len(args.created) == 3
    assert all(placement_group_table(pg)["state"] in ("PENDING", "CREATED") for pg in pgs)
    assert args.release() == 3 and args.created == []
    assert all(placement_group_table(pg)["state"] == "REMOVED" for pg in pgs)


def test_a_gpu_vllm_actor_serves_with_one_torch_thread_unless_the_driver_sets_one(monkeypatch):
    from longsweep.runtime.placement import actor_env
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    gpu = _spec(resources={"num_gpus": 1, "num_cpus": 8})
    assert actor_env(gpu) == {"runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1"}}}  # not Ray's 8
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert actor_env(gpu)["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "4"
    # vllm-cpu: torch's threads are the engine; Ray's num_cpus threads stay; llama.cpp sets its own
    assert actor_env(_spec(resources={"num_gpus": 0, "num_cpus": 8})) == {}
    assert actor_env(get_model("smollm2-135m")) == {}
