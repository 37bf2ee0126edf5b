"""Connect to Ray: a running cluster when there is one, else an embedded local Ray.

Order: an explicit ``address``, then ``RAY_ADDRESS``, then ``auto`` (a head started
with ``ray start --head`` on this machine). Only when none answers is an embedded
Ray started, bound to 127.0.0.1 with the dashboard off unless asked for.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

# An embedded Ray starts no idle worker processes ahead of need: each wakes ~100 times a second (an idle
# 2-CPU Ray: 272 wake-ups/s with them, 73 without), time taken from an engine that uses every core.
EMBEDDED_SYSTEM_CONFIG = {"enable_worker_prestart": False, "prestart_worker_first_driver": False}


def connect(address: str | None = None, *, num_cpus: int | None = None, dashboard: bool = False) -> str:
    """Initialise Ray once per process; returns a sentence saying which Ray is used."""
    import ray

    if ray.is_initialized():
        return "ray: already initialised in this process"
    env = {"env_vars": {"PYTHONUNBUFFERED": "1"}}
    address = address or os.environ.get("RAY_ADDRESS")
    if address == "local":  # force an embedded Ray even when another one runs here
        ray.init(num_cpus=num_cpus, include_dashboard=dashboard, _node_ip_address="127.0.0.1",
                 runtime_env=env, logging_level=logging.WARNING, _system_config=EMBEDDED_SYSTEM_CONFIG)
        return "ray: started an embedded local Ray on 127.0.0.1 (--address local)"
    if address:
        ray.init(address=address, runtime_env=env, logging_level=logging.WARNING)
        return f"ray: connected to the cluster at {address}"
    try:
        ray.init(address="auto", runtime_env=env, logging_level=logging.WARNING)
        return "ray: connected to the running local cluster (address=auto)"
    except (ConnectionError, RuntimeError) as e:
        logger.debug("no running Ray found (%s); starting an embedded one", e)
    ray.init(
        num_cpus=num_cpus, include_dashboard=dashboard, _node_ip_address="127.0.0.1",
        runtime_env=env, logging_level=logging.WARNING, _system_config=EMBEDDED_SYSTEM_CONFIG,
    )
    return f"ray: started an embedded local Ray on 127.0.0.1 ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
