"""Where a model instance runs: Ray resources per actor, and placement groups for
models that span several GPUs.

A model with ``vllm.tensor_parallel_size = N > 1`` gets, per actor, a placement
group of N bundles ``{GPU: 1, CPU: c}`` packed on one node (``STRICT_PACK``; vLLM's
tensor parallelism wants NVLink/PCIe peers, not the network). The actor itself sits
in bundle 0 and asks for no GPU: vLLM's Ray executor starts one worker per bundle and
the placement group captures them (the pattern Ray Data LLM uses). Everything else
gets plain per-actor resources: ``num_cpus``, ``num_gpus``, ``memory`` and custom
resources (``resources.custom``) that a cluster's node types can carry.
"""

from __future__ import annotations

from typing import Any, Callable

from longsweep.config import ModelSpec

RESTARTS = {"max_restarts": 3, "max_task_retries": 3}  # a dead actor reloads its model; its batch is retried


def gpus_per_instance(spec: ModelSpec) -> int:
    return spec.vllm.tensor_parallel_size if spec.backend == "vllm" else 0


def bundles(spec: ModelSpec) -> list[dict[str, float]] | None:
    """Placement-group bundles for one model instance, or None when plain resources suffice."""
    tp = gpus_per_instance(spec)
    if tp <= 1:
        return None
    cpus = max(1.0, float(spec.resources.num_cpus))
    return [{"GPU": 1.0, "CPU": cpus}] + [{"GPU": 1.0, "CPU": 1.0} for _ in range(tp - 1)]


def actor_resources(spec: ModelSpec) -> dict[str, Any]:
    """Static ``map_batches`` resource arguments of one actor."""
    r = spec.resources
    if bundles(spec):  # the GPUs are the placement group's; the actor only needs bundle 0's CPUs
        return {"num_cpus": max(1.0, float(r.num_cpus)), "num_gpus": None, "memory": None,
                "resources": dict(r.custom) or None}
    return {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus or None,
            "memory": r.memory_gb * 2**30 if r.memory_gb else None, "resources": dict(r.custom) or None}


def remote_args_fn(spec: ModelSpec) -> Callable[[], dict[str, Any]]:
    """Called by Ray Data for every actor it starts: restarts, and a fresh placement group when needed."""
    b = bundles(spec)

    def fn() -> dict[str, Any]:
        if not b:
            return dict(RESTARTS)
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        pg = placement_group(b, strategy="STRICT_PACK", name="")
        return {**RESTARTS, "scheduling_strategy": PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True)}

    return fn
