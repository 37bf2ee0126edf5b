"""Can this Ray cluster ever hold one actor of the model? Asked before a sweep starts, and while it waits.

One actor needs, on one node, what the registry's ``resources`` ask (``num_cpus``, ``num_gpus``,
``memory_gb``, ``custom``; a tensor-parallel vLLM model: its placement group's GPUs and CPUs packed on one
node). A node that can hold it is one alive now, or one of the autoscaler's node types that may still be
added: Ray's cluster config (autoscaler v2, KubeRay), else the ``--autoscaling-config`` file of the
autoscaler (v1) that serves this cluster's GCS when it runs on this machine (a driver on the head).

  - neither: ``FatalError`` at once (exit 3) with the numbers, unless ``--wait-for-resources`` was given
    (an autoscaler this driver cannot see);
  - only a node type: the sweep starts, and ``ResourceWait`` puts "waiting for the autoscaler" on the
    progress line until such a node joins, or stops the sweep after ``--wait-for-resources`` seconds.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from longsweep.config import ModelSpec
from longsweep.errors import FatalError
from longsweep.runtime.placement import bundles

logger = logging.getLogger(__name__)

DEFAULT_WAIT_S = 900.0  # --wait-for-resources: how long a sweep waits for an autoscaler to add a node
GIB = 2**30


def actor_demand(spec: ModelSpec) -> dict[str, float]:
    """What one actor of ``spec`` needs on one node (Ray resource names)."""
    r = spec.resources
    b = bundles(spec)
    if b:  # STRICT_PACK: every bundle of the placement group on one node
        need = {"CPU": sum(x.get("CPU", 0) for x in b), "GPU": sum(x.get("GPU", 0) for x in b)}
    else:
        need = {"CPU": float(r.num_cpus), "GPU": float(r.num_gpus)}
        if r.memory_gb:
            need["memory"] = r.memory_gb * GIB
    need.update({k: float(v) for k, v in r.custom.items()})
    return {k: v for k, v in need.items() if v > 0}


def fits(need: dict[str, float], have: dict[str, float]) -> bool:
    return all(have.get(k, 0.0) + 1e-9 >= v for k, v in need.items())


def fmt(res: dict[str, float]) -> str:
    parts = []
    for k in sorted(res, key=lambda k: (k not in ("CPU", "GPU", "memory"), k)):
        v = res[k]
        if k.startswith("node:") or k in ("object_store_memory",) or k.startswith("accelerator_type"):
            continue
        parts.append(f"{k} {v / GIB:.1f} GiB" if k == "memory" else f"{k} {v:g}")
    return ", ".join(parts) or "nothing"


@dataclass
class NodeType:
    name: str
    resources: dict[str, float] | None  # None: not stated (the provider infers it): may fit
    max_count: int  # -1: no limit


@dataclass
class Feasibility:
    need: dict[str, float]
    nodes: list[tuple[str, dict[str, float]]]  # alive nodes: (address, total resources)
    types: list[NodeType] | None  # the autoscaler's node types; None: no autoscaler seen
    fit_now: list[str] = field(default_factory=list)
    fit_later: list[str] = field(default_factory=list)

    def message(self, spec: ModelSpec) -> str:
        shown = lambda r: fmt({**{k: 0.0 for k in self.need}, **r})  # noqa: E731 - a missing resource is 0
        nodes = "; ".join(f"{a}: {shown(r)}" for a, r in self.nodes[:6]) or "none"
        types = ("; no autoscaler node type either (" + "; ".join(
            f"{t.name}: {shown(t.resources or {})}" for t in self.types) + ")") if self.types else ""
        return (f"no node of this Ray cluster can ever hold one actor of {spec.name}: one actor asks for "
                f"{fmt(self.need)} (the registry's `resources`), and the {len(self.nodes)} node(s) have "
                f"{nodes}{types}. Run it where such nodes exist, or lower `resources` in the registry; if an "
                f"autoscaler this driver cannot see will add such a node, pass --wait-for-resources SECONDS")


def alive_nodes() -> list[tuple[str, dict[str, float]]]:
    import ray
    return [(n.get("NodeManagerAddress", "?"), dict(n.get("Resources") or {})) for n in ray.nodes() if n.get("Alive")]


def _types_from_cluster_config() -> list[NodeType] | None:
    try:
        import ray._private.state as state
        cfg = state.state.get_cluster_config()
    except Exception as e:  # noqa: BLE001 - an older GCS, or not connected
        logger.debug("no cluster config (%s)", e)
        return None
    if not cfg or not cfg.node_group_configs:
        return None
    return [NodeType(g.name, {k: float(v) for k, v in g.resources.items()}, int(g.max_count))
            for g in cfg.node_group_configs]


def _gcs_port() -> str | None:
    try:
        import ray
        return ray.get_runtime_context().gcs_address.rpartition(":")[2]
    except Exception:  # noqa: BLE001
        return None


def _autoscaling_config_file() -> Path | None:
    """The v1 autoscaler's config file for this cluster, when its monitor runs on this machine."""
    import psutil
    port = _gcs_port()
    if not port:
        return None
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if not any("autoscaler" in c and "monitor.py" in c for c in cmd[:3]):
            continue
        args = dict(a.split("=", 1) for a in cmd if a.startswith("--") and "=" in a)
        if args.get("--gcs-address", "").rpartition(":")[2] == port and args.get("--autoscaling-config"):
            return Path(args["--autoscaling-config"])
    return None


def types_from_file(path: Path) -> list[NodeType] | None:
    """``available_node_types`` of an autoscaler config (YAML or JSON); worker types that can be added."""
    import yaml
    try:
        text = path.read_text()
        cfg = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        logger.warning("autoscaler config %s cannot be read (%s)", path, e)
        return None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("available_node_types"), dict):
        return None
    total_max = int(cfg.get("max_workers", -1))
    out = []
    for name, t in cfg["available_node_types"].items():
        res = t.get("resources")
        n = 0 if name == cfg.get("head_node_type") else int(t.get("max_workers", total_max))
        n = min(n, total_max) if total_max >= 0 else n
        out.append(NodeType(name, {k: float(v) for k, v in res.items()} if isinstance(res, dict) else None, n))
    return out


def node_types() -> list[NodeType] | None:
    types = _types_from_cluster_config()
    if types is None:
        path = _autoscaling_config_file()
        types = types_from_file(path) if path else None
    return types


def assess(spec: ModelSpec, types: list[NodeType] | None | bool = True) -> Feasibility:
    """``types``: the autoscaler's node types when already known; True: look them up."""
    f = Feasibility(actor_demand(spec), alive_nodes(), node_types() if types is True else types or None)
    f.fit_now = [a for a, r in f.nodes if fits(f.need, r)]
    f.fit_later = [t.name for t in f.types or []
                   if t.max_count != 0 and (t.resources is None or fits(f.need, t.resources))]
    return f


def require_feasible(spec: ModelSpec, *, wait_given: bool = False) -> Feasibility:
    """Refuse a model that no node can ever hold (exit 3), unless the user asked to wait for one."""
    f = assess(spec)
    if not f.fit_now and not f.fit_later and not wait_given:
        raise FatalError(f.message(spec))
    return f


class ResourceWait:
    """While no alive node can hold one actor: a note for the progress line, and a deadline."""

    def __init__(self, spec: ModelSpec, wait_s: float | None, *, check_every_s: float = 5.0):
        self.spec, self.wait_s = spec, DEFAULT_WAIT_S if wait_s is None else float(wait_s)
        self.every = check_every_s
        self._since: float | None = None  # when the wait began; None while a node can hold an actor
        self._last = -1e9
        self._types: list[str] = []
        self._known: list[NodeType] | None | bool = True

    def poll(self) -> None:
        if time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        try:
            f = assess(self.spec, self._known)
            self._known = f.types  # node types do not change during a sweep: looked up once
        except Exception as e:  # noqa: BLE001 - a hiccup of the GCS is not a reason to stop
            logger.debug("resource check failed: %s", e)
            return
        if f.fit_now:
            self._since = None
        elif self._since is None:
            self._since = self._last
        self._types = f.fit_later

    def note(self) -> str | None:
        """The progress line's words while waiting, else None."""
        if self._since is None:
            return None
        el = time.monotonic() - self._since
        what = f"a node with {fmt(actor_demand(self.spec))}"
        who = (f"the autoscaler ({', '.join(self._types)}) to add {what}" if self._types
               else f"{what} to join the cluster")
        return f"waiting for {who}: {el:.0f}s of --wait-for-resources {self.wait_s:.0f}"

    def expired(self) -> str | None:
        """Why to stop: waited past the deadline with no node that can hold one actor."""
        if self._since is not None and time.monotonic() - self._since > self.wait_s:
            return (f"no node that can hold one actor of {self.spec.name} ({fmt(actor_demand(self.spec))}) "
                    f"joined within --wait-for-resources {self.wait_s:.0f} s. Rows written so far are kept; "
                    f"rerun with --resume once the cluster has such a node")
        return None
