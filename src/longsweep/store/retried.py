"""``--retry-errors [KINDS]``: run again the keys whose row is an error, replacing their rows.

Two calls in ``runtime/sweep.run_sweep``, made by the run that holds the sweep folder's lease::

    done = done_items(table_dir)
    retry = begin_retry(job, sweep_dir, planned, done)  # None unless the job's options ask for a retry
    if retry is not None:
        done = retry.done                                # the error keys no longer count as done
    ... plan, run the pool ...
    if retry is not None:
        retry.finish(sweep_id)                           # before the summary is read

``begin_retry`` picks, among the keys of this model's plan, those whose row is an error of the asked
kinds (``job.options.retry_errors``: ``[]`` is every kind) and notes where their rows are. ``finish``
then moves each replaced row out of the table into ``<sweep>/retried/<table>/`` (nothing is lost) once the
key has its new row: a file that held such rows is rewritten without them under a temporary name and
renamed over the old one, so a reader sees the old file or the new one, never half of one, and every key
has exactly one row. A key whose rerun did not happen (the sweep stopped early) keeps its error row.
Companion tables (``job.companions``: ``{table: unique columns}``, e.g. the review job's ``reviewers``)
keep only the rows of the current row of their key (same ``key`` and ``finished_at``). The manifest gets
a ``retried`` entry with both attempts of every key.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from longsweep.store.location import Loc, loc
from longsweep.store.manifest import write_manifest
from longsweep.store.tables import file_columns, parquet_files, read_file, replace_file

logger = logging.getLogger(__name__)

RETRIED = "retried"  # <sweep>/retried/<table>/*.parquet: the rows a retry replaced
ATTEMPT = ("status", "error_kind", "error", "attempts", "finished_at", "sweep_id")
_LOCK = threading.Lock()  # the sweeps of several models in one process share the table's files


def _located(table_dir: Loc, want: set[str], column: str = "item_key") -> list[dict[str, Any]]:
    """Every row (not deduplicated) whose ``column`` (``item_key`` falls back to ``key``) is in ``want``,
    with its file name and index and the columns of an attempt."""
    out = []
    for fi, f in enumerate(parquet_files(table_dir)):
        try:
            names = file_columns(f)
            t = read_file(f, [c for c in ("key", "item_key", *ATTEMPT) if c in names])
        except Exception as e:  # noqa: BLE001 - an unreadable file is left to the quarantine
            logger.warning("%s: unreadable, left as it is (%s)", f, e)
            continue
        for i, r in enumerate(t.to_pylist()):
            r["item_key"] = r.get("item_key") or r["key"]
            if r[column] in want:
                out.append({**r, "file": f.name, "file_i": fi, "i": i})
    return out


def _attempt(r: dict[str, Any]) -> dict[str, Any]:
    a = {k: r.get(k) for k in ATTEMPT}
    if a["error"]:
        a["error"] = a["error"][:300]
    return a


def drop_rows(table_dir: Loc, drops: dict[str, list[int]], archive_dir: Loc) -> int:
    """Move rows (file name -> row indexes) out of ``table_dir`` into ``archive_dir``: the archive is written
    first, then each file is replaced by a copy without them (or removed when nothing is left)."""
    n = 0
    for name, idx in sorted(drops.items()):
        path = table_dir / name
        t = read_file(path)
        mask = np.ones(t.num_rows, dtype=bool)
        mask[sorted(set(idx))] = False
        replace_file(archive_dir / f"{name.rsplit('.', 1)[0]}-{uuid.uuid4().hex[:8]}.parquet", t.filter(pa.array(~mask)))
        kept = t.filter(pa.array(mask))
        if kept.num_rows:
            replace_file(path, kept)
        else:
            path.unlink()
        n += int((~mask).sum())
    return n


def supersede(table_dir: Loc, archive_dir: Loc, rows: list[dict[str, Any]],
              old: set[tuple[str, str]] | None = None) -> list[str]:
    """Keep one row per key among ``rows`` (from ``_located``): a row not in ``old`` (file, key) first, then
    the newest ``finished_at``, then the later file and row, as ``results.dedupe`` does. Returns the keys
    whose other rows were moved to ``archive_dir``."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r)
    drops: dict[str, list[int]] = {}
    replaced = []
    for k, rs in by_key.items():
        if len(rs) < 2:
            continue
        best = max(rs, key=lambda r: ((r["file"], k) not in (old or set()), r["finished_at"] or "",
                                      r["file_i"], r["i"]))
        for r in rs:
            if r is not best:
                drops.setdefault(r["file"], []).append(r["i"])
        replaced.append(k)
    drop_rows(table_dir, drops, archive_dir)
    return sorted(replaced)


def prune_companion(sweep_dir: Loc, table: str, unique: tuple[str, ...], current: dict[str, str | None],
                    keys: set[str], archive_dir: Loc) -> int:
    """Rows of companion ``table`` whose key is in ``keys`` keep only those of the key's current row in
    ``current`` (same ``finished_at``; a key without a row keeps none), once each (``unique``); the others
    move to ``archive_dir``."""
    cdir = sweep_dir / table
    keep: dict[tuple, tuple[int, int, str]] = {}
    drops: dict[str, list[int]] = {}
    for fi, f in enumerate(parquet_files(cdir)):
        try:
            names = file_columns(f)
            t = read_file(f, [c for c in dict.fromkeys(("key", "finished_at", *unique)) if c in names])
        except Exception:  # noqa: BLE001 - an unreadable file is left as it is
            continue
        for i, r in enumerate(t.to_pylist()):
            if r["key"] not in keys:
                continue
            if r["key"] not in current or r.get("finished_at") != current[r["key"]]:
                drops.setdefault(f.name, []).append(i)
                continue
            u = tuple(r.get(c) for c in unique)
            if u in keep:  # the same row twice (a batch that ran again): the later one stays
                prev = keep[u]
                drops.setdefault(prev[2], []).append(prev[1])
            keep[u] = (fi, i, f.name)
    return drop_rows(cdir, drops, archive_dir) if drops else 0


@dataclass
class Retry:
    """A retry under way for one model's plan."""

    job: Any
    sweep_dir: Loc
    kinds: list[str]
    done: dict[str, int]  # the rows written per item key, less the items to run again
    scope: set[str]  # item keys of this model's plan: the only keys touched
    old: set[tuple[str, str]]  # (file name, row key) of the rows to replace
    first: dict[str, dict[str, Any]]  # row key -> its first attempt

    @property
    def table_dir(self) -> Loc:
        return self.sweep_dir / self.job.table

    def finish(self, sweep_id: str, model_name: str | None = None) -> dict[str, Any]:
        """Move the replaced rows out of the table (and their companions' rows), record both attempts."""
        archive = self.sweep_dir / RETRIED
        with _LOCK:
            rows = _located(self.table_dir, set(self.first), "key")
            replaced = set(supersede(self.table_dir, archive / self.job.table, rows, self.old))
            rows = _located(self.table_dir, self.scope)
            current = {r["key"]: r.get("finished_at") for r in rows}
            for table, unique in getattr(self.job, "companions", {}).items():
                prune_companion(self.sweep_dir, table, tuple(unique), current, self.scope | set(current),
                                archive / table)
        now = {r["key"]: _attempt(r) for r in rows}
        record = {
            "kinds": self.kinds or "all", "keys": len(self.first), "replaced": len(replaced),
            "not_rerun": len(self.first) - len(replaced), "archive": f"{RETRIED}/{self.job.table}",
            "attempts": [{"key": k, "first": a, "second": now.get(k) if k in replaced else None}
                         for k, a in sorted(self.first.items())],
        }
        write_manifest(self.sweep_dir, sweep_id=sweep_id, job=self.job.name, model_name=model_name, retried=record)
        logger.info("retry: %d of %d error rows replaced", len(replaced), len(self.first))
        return record


def begin_retry(job: Any, sweep_dir: str | Loc, planned: Any, done: dict[str, int]) -> Retry | None:
    """None unless ``job.options.retry_errors`` is set; else the retry of this model's error keys, whose
    ``done`` leaves them out. Keys an earlier retry left with two rows (it was stopped) are tidied first."""
    kinds = getattr(getattr(job, "options", None), "retry_errors", None)
    if kinds is None:
        return None
    sweep_dir = loc(sweep_dir)
    table_dir = sweep_dir / job.table
    scope = {it.key for it in planned.items} | {r.get("item_key") or r["key"] for r in planned.error_rows}
    with _LOCK:
        rows = _located(table_dir, scope)
        if supersede(table_dir, sweep_dir / RETRIED / job.table, rows):
            rows = _located(table_dir, scope)
    again = {r["item_key"] for r in rows if r.get("status") != "ok" and (not kinds or r.get("error_kind") in kinds)}
    rerun = [r for r in rows if r["item_key"] in again]
    logger.info("retry: %d item(s) with error rows run again (%s)", len(again), ", ".join(kinds) or "every kind")
    return Retry(job, sweep_dir, list(kinds), {k: n for k, n in done.items() if k not in again}, scope,
                 {(r["file"], r["key"]) for r in rerun}, {r["key"]: _attempt(r) for r in rerun})
