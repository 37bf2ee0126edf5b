"""Scans of big prompt files kept between runs: a resume of a 10M-line file does not scan it again.

A scan (runtime/stream_input.py: the spans, and per line the id's 128-bit hash and a blank flag, 17 bytes a
line) is filed under a key of the file's real path, size, modification time and inode, so a file changed in
any way is scanned again; a scan is only filed after the file passed every file-wide check (no repeats), so
a filed one needs none. Folder: ``$LONGSWEEP_CACHE_DIR`` or ``~/.cache/longsweep/scans``; the newest
``KEEP`` scans stay, older ones are removed when a new one is filed (a 10M-line file's scan: 170 MB).
``LONGSWEEP_CACHE_DIR=off`` keeps none (each scan then lives in a temporary folder for its run).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import time
import uuid
from pathlib import Path

KEEP = 4
VERSION = 1  # of the scan's layout and hashes: a change files new scans under new keys


def root() -> Path | None:
    where = os.environ.get("LONGSWEEP_CACHE_DIR")
    if where == "off":
        return None
    return Path(where) if where else Path.home() / ".cache" / "longsweep" / "scans"


def key(path: str) -> str | None:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    raw = f"{VERSION}\0{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def load(path: str):
    """The filed scan of ``path`` as it is now, or None."""
    base, k = root(), key(path)
    if base is None or k is None:
        return None
    folder = base / k
    try:
        scan = pickle.loads((folder / "scan.pkl").read_bytes())
        os.utime(folder)  # the newest use: kept longest
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return None
    scan.kept = str(folder)
    return scan


def new_folder() -> str | None:
    """A folder to scan into, inside the cache (filed by ``file``), or None when there is no cache."""
    base = root()
    if base is None:
        return None
    try:
        base.mkdir(parents=True, exist_ok=True)
        folder = base / f".new-{uuid.uuid4().hex}"
        folder.mkdir()
    except OSError:
        return None
    return str(folder)


def file(path: str, scan) -> object:
    """File ``scan`` (scanned into a ``new_folder``) under ``path``'s key; the scan, now in its place."""
    folder, k = Path(scan.kept), key(path)
    dest = folder.parent / k if k else None
    try:
        (folder / "scan.pkl").write_bytes(pickle.dumps(scan))
        if dest is None or dest.exists():
            raise FileExistsError(dest)
        folder.rename(dest)
    except OSError:
        return scan  # another run filed it first, or the disk said no: this one stays in its folder
    scan.kept = str(dest)
    _prune(dest.parent)
    return scan


def _prune(base: Path, min_age_s: float = 3600) -> None:
    """Keep the newest ``KEEP`` scans; an older one goes once it is an hour old (a run may still read it),
    as do unfinished scans of runs that ended."""
    now = time.time()
    try:
        entries = sorted(base.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    kept = [p for p in entries if not p.name.startswith(".")]
    for p in kept[KEEP:] + [p for p in entries if p.name.startswith(".new-")]:
        try:
            if now - p.stat().st_mtime > min_age_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def is_new(folder: str) -> bool:
    return Path(folder).name.startswith(".new-")


def is_filed(folder: str) -> bool:
    base = root()
    return base is not None and Path(folder).parent == base and not Path(folder).name.startswith(".")
