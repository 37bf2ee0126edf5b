"""Is this folder one a sweep may write into? Checked before a writer takes the folder's lease.

A folder that does not exist yet, or holds no ``manifest.json``, is a new sweep. A ``manifest.json`` must be
ours: a JSON object whose ``runs`` is a list of objects (what ``store.write_manifest`` writes, atomically,
so a half-written one does not happen). Anything else (a JSON list, another program's manifest, a file
that is not JSON) means the folder belongs to someone else: it is refused before anything is written,
with one line (``InputError``, exit 2), instead of a traceback after Ray started.
"""

from __future__ import annotations

import json
from pathlib import Path

from longsweep.errors import InputError
from longsweep.store.location import Loc, loc
from longsweep.store.manifest import MANIFEST


def manifest_problem(path: Path | Loc) -> str | None:
    """Why ``path`` is not a manifest we wrote, or None when it is."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"not JSON ({e})"
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not a sweep's manifest (an object)"
    runs = data.get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        return "an object without a list of runs: another program's file, not a sweep's manifest"
    if not isinstance(data.get("latest", {}), dict) or not isinstance(data.get("config", {}), (dict, type(None))):
        return "its latest or config entry is not an object"
    return None


def check_sweep_folder(sweep_dir: str | Path | Loc) -> None:
    """Raise ``InputError`` (one line) when ``sweep_dir`` exists and is not a sweep folder we can write."""
    d = loc(sweep_dir)
    if d.exists() and not d.is_dir():
        raise InputError(f"{d}: exists and is not a folder")
    m = d / MANIFEST
    if not m.exists():
        return
    if not m.is_file():
        raise InputError(f"{m}: not a file; {d} is not a sweep folder: choose another --out")
    try:
        why = manifest_problem(m)
    except OSError as e:
        why = f"cannot be read ({e.strerror or e})"
    if why:
        raise InputError(f"{m}: {why}; {d} is not a sweep folder this run can write into: choose another "
                         f"--out, or move the file away")
