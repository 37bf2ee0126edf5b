"""The scan and the anti-join of a big prompt file, each in a child process: the driver's memory stays flat.

Both hold 16 bytes a line for a moment (the ids' hashes: 160 MB at 10M lines, more while sorting). Run in the
driver, that would be its peak, growing with the file; run in a child (a fresh interpreter: runtime/child.py), the memory is the child's and goes back to the system when it exits,
and the driver keeps only what the sweep needs: the spans, and a bit a line of what is left to run. The
scan's hashes wait in a folder for the anti-join of each model: filed between runs (runtime/scan_cache.py), or
a temporary one.

The anti-join of the first model can start before Ray does (``prefetch``, called once the table is compacted):
its child runs while the driver connects to Ray, and ``todo`` takes its answer.

A file under ``CHILD_BYTES`` (about 300,000 short prompts) is scanned in the driver: a child costs a second or
two to start, more than such a scan. ``LONGSWEEP_SCAN_CHILD_BYTES`` sets the limit (0: always a child).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from longsweep.runtime import scan_cache
from longsweep.runtime.child import in_child
from longsweep.runtime.stream_input import Scan, Todo, scan_prompts, todo_spans

CHILD_BYTES = 32 << 20
_SCANS: dict[tuple[str, int, int], Scan] = {}
_PENDING: dict[tuple[str, str, str], Future] = {}


def child_bytes() -> int:
    try:
        return int(os.environ.get("LONGSWEEP_SCAN_CHILD_BYTES", CHILD_BYTES))
    except ValueError:
        return CHILD_BYTES


def _stamp(path: str) -> tuple[str, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return str(path), st.st_size, st.st_mtime_ns


def _big(path: str) -> bool:
    stamp = _stamp(path)
    return stamp is not None and stamp[1] >= child_bytes()


def _forget(scan: Scan) -> None:
    if scan.kept and not scan_cache.is_filed(scan.kept):
        shutil.rmtree(scan.kept, ignore_errors=True)


def scan(path: str) -> Scan:
    """The file's scan (``InputError`` for a file refused as a whole), kept for the sweep that follows; a big
    file's is filed between runs (runtime/scan_cache.py), so that a resume does not scan it again."""
    stamp = _stamp(path)
    have = _SCANS.get(stamp) if stamp else None
    if have is not None and (not have.kept or os.path.isdir(have.kept)):
        return have
    for old in _SCANS.values():
        _forget(old)
    _SCANS.clear()
    got = _scan_big(path) if _big(path) else scan_prompts(path)
    if stamp is not None:
        _SCANS[stamp] = got
    return got


def _scan_big(path: str) -> Scan:
    filed = scan_cache.load(path)
    if filed is not None:
        return filed
    folder = scan_cache.new_folder()
    if folder is None:
        folder = tempfile.mkdtemp(prefix="longsweep-scan-")
        atexit.register(shutil.rmtree, folder, True)
    try:
        got = in_child(scan_prompts, path, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return scan_cache.file(path, got) if scan_cache.is_new(folder) else got


def _key(s: Scan, table_dir: Any, model: str) -> tuple[str, str, str]:
    return s.path, str(table_dir), model


def prefetch(s: Scan, table_dir: Any, model: str) -> None:
    """Start the anti-join of a big file's scan for ``model`` in a child now; ``todo`` waits for it."""
    _PENDING.clear()  # one at a time: an earlier run's, never taken (it stopped before its sweep), is stale
    if s.kept:
        pool = ThreadPoolExecutor(1, thread_name_prefix="scan-child")
        _PENDING[_key(s, table_dir, model)] = pool.submit(in_child, todo_spans, s, table_dir, model)
        pool.shutdown(wait=False)


def todo(s: Scan, table_dir: Any, model: str) -> Todo:
    """What is left of the file for ``model``: in a child when the scan's hashes wait in a folder."""
    started = _PENDING.pop(_key(s, table_dir, model), None)
    if started is not None:
        return started.result()
    return in_child(todo_spans, s, table_dir, model) if s.kept else todo_spans(s, table_dir, model)
