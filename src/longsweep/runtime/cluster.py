"""Connect to Ray: a cluster named by the user or started with ``ray start``, else an embedded local Ray.

Order: ``--address`` (``local`` forces an embedded Ray), then ``RAY_ADDRESS``, then a head started with
``ray start --head`` on this machine, else an embedded Ray bound to 127.0.0.1 with the dashboard off.

Never another sweep's embedded Ray: Ray's own ``address="auto"`` falls back to any GCS process it finds on
the machine, the one a running sweep started with ``ray.init()`` included, and a second sweep attached to it
dies when the first ends. In Ray 2.60 only ``ray start`` records its head in
``<ray temp dir>/ray_current_cluster`` (``ray stop`` removes it; ``ray.init()`` never writes it), so that
file, and only when its GCS answers, is what "a cluster started with ``ray start``" means here.
"""

from __future__ import annotations

import logging
import os
import socket

from longsweep.errors import FatalError

logger = logging.getLogger(__name__)

# An embedded Ray starts no idle worker processes ahead of need: each wakes ~100 times a second (an idle
# 2-CPU Ray: 272 wake-ups/s with them, 73 without), time taken from an engine that uses every core.
EMBEDDED_SYSTEM_CONFIG = {"enable_worker_prestart": False, "prestart_worker_first_driver": False}


def ray_start_address(temp_dir: str | None = None) -> str | None:
    """The GCS address that ``ray start --head`` recorded on this machine, or None."""
    from ray._common.utils import get_ray_address_file
    try:
        with open(get_ray_address_file(temp_dir)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def answers(address: str, timeout_s: float = 2.0) -> bool:
    """A TCP connection to ``host:port`` opens (a stale record of a head that died does not)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _embedded(num_cpus: int | None, dashboard: bool, env: dict, *, tries: int = 2, log_to_driver: bool = True) -> None:
    """A new Ray of this process's own (``address="local"``), even when another process's Ray runs here.
    On a machine too loaded for the raylet to register within Ray's 30 s, it is tried once more."""
    import ray
    for attempt in range(1, tries + 1):
        try:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=dashboard, _node_ip_address="127.0.0.1",
                     runtime_env=env, logging_level=logging.WARNING, _system_config=EMBEDDED_SYSTEM_CONFIG,
                     log_to_driver=log_to_driver)
            return
        except Exception as e:  # noqa: BLE001 - Ray raises a bare Exception when its node times out
            _shutdown_quietly()
            if attempt == tries:
                raise FatalError(f"an embedded Ray could not start ({_first_line(e)}); is the machine "
                                 f"overloaded? Rerun, or start one with `ray start --head`") from None
            logger.warning("embedded Ray did not start (%s); trying again", _first_line(e))


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def _shutdown_quietly() -> None:
    try:
        import ray
        ray.shutdown()
    except Exception:  # noqa: BLE001
        pass


def _join(address: str, env: dict, *, log_to_driver: bool = True) -> None:
    import ray
    try:
        ray.init(address=address, runtime_env=env, logging_level=logging.WARNING, log_to_driver=log_to_driver)
    except Exception as e:  # noqa: BLE001 - ConnectionError, a timeout, an authentication error
        _shutdown_quietly()
        raise FatalError(f"cannot connect to the Ray cluster at {address}: {_first_line(e)}") from None


def connect(address: str | None = None, *, num_cpus: int | None = None, dashboard: bool = False,
            log_to_driver: bool = True) -> str:
    """Initialise Ray once per process; returns a sentence saying which Ray is used. ``log_to_driver=False``
    (a default, quiet sweep: runtime/quiet.py) leaves the workers' output in the session's log files."""
    import ray

    if ray.is_initialized():
        return "ray: already initialised in this process"
    env = {"env_vars": {"PYTHONUNBUFFERED": "1"}}
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address == "local":  # force an embedded Ray even when another one runs here
        _embedded(num_cpus, dashboard, env, log_to_driver=log_to_driver)
        return "ray: started an embedded local Ray on 127.0.0.1 (--address local)"
    if address and address != "auto":
        _join(address, env, log_to_driver=log_to_driver)
        return f"ray: connected to the cluster at {address}"
    head = ray_start_address()
    if head and answers(head):
        _join(head, env, log_to_driver=log_to_driver)
        return f"ray: connected to the running local cluster at {head} (started with `ray start`)"
    if head:
        logger.warning("ray start recorded a head at %s, but it does not answer; starting an embedded Ray", head)
    if address == "auto":
        logger.warning("--address auto: no head started with `ray start` answers here; other sweeps' embedded "
                       "Rays are never joined, starting an embedded Ray")
    _embedded(num_cpus, dashboard, env, log_to_driver=log_to_driver)
    return f"ray: started an embedded local Ray on 127.0.0.1 ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
