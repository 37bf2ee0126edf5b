"""What each worker's engine counts of itself (vLLM: its KV block size, its scheduler's preemptions), one small
JSON file per worker in ``<sweep>/engine/<model>/``, rewritten after each batch; the driver sums them into the
sweep's summary and the manifest's counts. A file per worker: workers never write the same object."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from longsweep.store import Loc, loc

logger = logging.getLogger(__name__)
FOLDER = "engine"


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def record(sweep_dir: Loc | str, model: str, worker_id: str, stats: dict[str, Any]) -> None:
    """``stats`` (counts since the worker's engine loaded) as this worker's file; nothing when empty."""
    if not stats:
        return
    try:
        d = loc(sweep_dir) / FOLDER / _name(model)
        d.mkdir()
        (d / f"{_name(worker_id)}.json").write_text(json.dumps({"worker": worker_id, **stats}))
    except Exception as e:  # noqa: BLE001 - a count, never a reason to fail a batch
        logger.warning("could not record engine stats of %s: %s", worker_id, e)


def read(sweep_dir: Loc | str, model: str | None) -> dict[str, Any] | None:
    """The model's workers' stats summed: ``preemptions`` (None when no worker counted them), ``block_size``
    (the largest any worker reported), ``workers`` (how many recorded); None when none recorded."""
    d = loc(sweep_dir) / FOLDER / _name(model or "")
    try:
        files = d.files(".json") if model else []
    except Exception:  # noqa: BLE001 - an unreachable store: no stats
        return None
    per = []
    for f in files:
        try:
            per.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            continue
    if not per:
        return None
    pre = [int(p["preemptions"]) for p in per if isinstance(p.get("preemptions"), int)]
    sizes = [int(p["block_size"]) for p in per if isinstance(p.get("block_size"), int)]
    return {"workers": len(per), "preemptions": sum(pre) if pre else None, "block_size": max(sizes) if sizes else None}


def line(stats: dict[str, Any] | None) -> str | None:
    """The summary's line on preemptions, or None when no worker counted them."""
    if not stats or stats.get("preemptions") is None:
        return None
    return (f"engine: {stats['preemptions']} preemption(s) by the scheduler (recomputed), "
            f"{stats['workers']} worker(s)")
