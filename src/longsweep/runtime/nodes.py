"""The nodes of a multi-node cluster: a local ``--out`` every node sees, and nodes lost mid-sweep.

``check_out_visible(out)``: before any model runs, the driver writes a marker holding a random token in
the output folder, and one zero-CPU task pinned to each alive node (``NodeAffinitySchedulingStrategy``,
not soft) reads it back. A node that cannot read it (the path is missing there, or is that node's own local
folder of the same name) would keep the rows it writes; the sweep is refused with one line (exit 2). Skipped
for a single-node Ray and for a URI with a scheme (``s3://``, ``gs://``). A node that does not answer within
the timeout is not refused, only logged: only a node that answers "not there" is.

Node loss: a lost node takes its actors and their batches in flight with it; Ray restarts the actors
(on a node with room) and their tasks run again (runtime/placement.py: task retries without a cap, as Ray
Data's own default). Each worker marks the batches it runs (``InFlight``: one key per batch in flight in
Ray's GCS key-value store, ``inflight/<job id>/<model>/<node id>/<random>``, deleted when the batch's rows
are returned; the store of rows may be a bucket, this is not kept there). A key left at the end is a batch
cut short that ran again. ``NodeWatch`` (driven by placement.OrphanSweeper, which every actor pool runs in)
sees nodes leave (``ray.nodes()``) and says once, at the end of the model's sweep, which nodes were lost and
how many batches ran again.
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import uuid
from pathlib import Path

from longsweep.errors import InputError

logger = logging.getLogger(__name__)

MARKER = ".longsweep-visible-"  # the marker's name in the output folder, then its token
CHECK_TIMEOUT_S = 120.0  # a node whose task has not answered by then is not checked


def _sees(path: str, token: str) -> bool:
    """On one node: the marker is there and holds the driver's token (not a same-named local folder)."""
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def _alive() -> list[dict]:
    import ray
    return [n for n in ray.nodes() if n.get("Alive")]


def node_name(n: dict) -> str:
    return f"{n.get('NodeManagerAddress', '?')} (node {str(n.get('NodeID', '?'))[:8]})"


def check_out_visible(out: str, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Refuse (``InputError``, exit 2) a local output folder that some alive node of the cluster cannot see."""
    if "://" in str(out):
        return  # an object store: every node reaches it by its URI
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    nodes = _alive()
    if len(nodes) < 2:
        return
    folder = Path(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    marker = folder / f"{MARKER}{token}"
    marker.write_text(token)
    try:
        look = ray.remote(num_cpus=0, max_retries=0)(_sees)
        refs = [(n, look.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                 .remote(str(marker), token)) for n in nodes]
        ready, late = ray.wait([r for _, r in refs], num_returns=len(refs), timeout=timeout_s)
        blind = []
        for n, ref in refs:
            if ref not in ready:
                continue
            try:
                if not ray.get(ref):
                    blind.append(n)
            except Exception:  # noqa: BLE001 - the node left meanwhile: nothing to refuse
                continue
        if late:
            logger.warning("%d node(s) did not answer the --out check within %.0fs", len(late), timeout_s)
    finally:
        marker.unlink(missing_ok=True)
    if blind:
        raise InputError(
            f"--out {folder}: {len(blind)} of {len(nodes)} nodes cannot see this folder "
            f"({', '.join(node_name(n) for n in blind)}), so the rows they write would stay on them; use an "
            f"object-store URI (--out s3://bucket/prefix) or a path every node mounts (NFS, EFS)")


NAMESPACE = "longsweep"


def _prefix(model: str) -> str:
    import ray
    return f"inflight/{ray.get_runtime_context().get_job_id()}/{model}/"


class InFlight:
    """Worker side: one GCS key per batch in flight, under the node that runs it."""

    def __init__(self, model: str):
        try:
            import ray
            self.prefix = _prefix(model) + ray.get_runtime_context().get_node_id() + "/"
        except Exception:  # noqa: BLE001 - outside Ray (unit tests): nothing is marked
            self.prefix = None

    def begin(self) -> str | None:
        if self.prefix is None:
            return None
        key = self.prefix + uuid.uuid4().hex
        try:
            from ray.experimental.internal_kv import _internal_kv_put
            _internal_kv_put(key, b"", namespace=NAMESPACE)
            return key
        except Exception:  # noqa: BLE001 - a mark is a count, never a reason to fail a batch
            return None

    @staticmethod
    def end(key: str | None) -> None:
        if key is None:
            return
        try:
            from ray.experimental.internal_kv import _internal_kv_del
            _internal_kv_del(key, namespace=NAMESPACE)
        except Exception:  # noqa: BLE001
            pass


class NodeWatch:
    """Driver side: the nodes alive when the model's sweep started (and those that joined), the ones lost
    since, and the batches cut short (keys ``InFlight`` left)."""

    def __init__(self, model: str, interval_s: float = 5.0):
        self.prefix = _prefix(model)
        self.interval_s = interval_s
        self.known: dict[str, dict] = {}
        self.lost: dict[str, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="node-watch")
        self.poll()

    @classmethod
    def start(cls, model: str) -> "NodeWatch | None":
        """A started watch, or None outside a connected Ray (a unit test's pool)."""
        try:
            import ray
            return cls(model).__enter__() if ray.is_initialized() else None
        except Exception:  # noqa: BLE001 - no node table: nothing to watch
            return None

    def __enter__(self) -> "NodeWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        line = self.finish()
        if line:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def poll(self) -> None:
        import ray
        try:
            nodes = ray.nodes()
        except Exception:  # noqa: BLE001 - the GCS briefly unreachable: try next time
            return
        for n in nodes:
            nid = n.get("NodeID")
            if n.get("Alive"):
                self.known.setdefault(nid, n)
            elif nid in self.known and nid not in self.lost:
                self.lost[nid] = n

    def finish(self) -> str | None:
        """The one line about lost nodes (None when none was lost); this sweep's keys are deleted."""
        self.poll()
        try:
            from ray.experimental.internal_kv import _internal_kv_del, _internal_kv_list
            left = len(_internal_kv_list(self.prefix, namespace=NAMESPACE))
            _internal_kv_del(self.prefix, del_by_prefix=True, namespace=NAMESPACE)
        except Exception:  # noqa: BLE001 - no count: the line says so
            left = None
        if not self.lost:
            return None
        names = ", ".join(node_name(n) for n in self.lost.values())
        ran = "an unknown number of batches" if left is None else f"{left} batch{'es' if left != 1 else ''}"
        return (f"[longsweep] {len(self.lost)} node(s) lost during the sweep ({names}); {ran} cut short "
                f"ran again on the actors left")
