"""A sweep's tables: ``<sweep>/<table>/*.parquet``, read once per key, written one whole file at a time.

Readers never trust a file they cannot read (a writer killed mid-file on a local disk): it is skipped with a
warning, and the run holding the sweep's lease moves it to ``<sweep>/quarantine/<table>/``. Each key counts
once (``dedupe``: the newest row wins). Writers publish a file once under its final name (``Loc.publish``):
on an object store there is no rename and no partial object, on a local disk a hidden temporary is renamed.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from longsweep.store.location import Loc, loc

logger = logging.getLogger(__name__)

QUARANTINE = "quarantine"
WRITING_S = 120.0  # Ray Data writes a block's file under its final name: a younger unreadable file is in flight


def parquet_files(table_dir: Loc | str) -> list[Loc]:
    """The table's data files: ``*.parquet``, not hidden (a writer's temporary ``.name.tmp`` is not data)."""
    return loc(table_dir).files(".parquet")


def read_file(f: Loc, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(f.path, filesystem=f.fs, columns=columns)


def file_columns(f: Loc) -> list[str]:
    return pq.read_schema(f.path, filesystem=f.fs).names


def publish_table(table_dir: Loc | str, t: pa.Table, *, prefix: str = "w") -> Loc:
    """Write ``t`` as one new file of the table, under its final name at once."""
    dest = loc(table_dir) / f"{prefix}_{uuid.uuid4().hex}.parquet"
    buf = io.BytesIO()
    pq.write_table(t, buf)
    dest.publish(buf.getvalue())
    return dest


def replace_file(dest: Loc, t: pa.Table) -> None:
    """Rewrite an existing file of the table whole (a reader sees the old rows or the new ones)."""
    buf = io.BytesIO()
    pq.write_table(t, buf)
    dest.publish(buf.getvalue())


_warned: set[tuple[str, tuple[str, ...]]] = set()


def _warn_once(table_dir: Loc, what: str, names: list[str], tail: str) -> None:
    key = (f"{table_dir}:{what}", tuple(names))
    if key in _warned:
        return
    _warned.add(key)
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    logger.warning("%s: %d %s: %s; %s", table_dir, len(names), what, shown, tail)


def _age_s(f: Loc) -> float:
    try:
        m = f.mtime()
    except OSError:
        return 0.0
    return time.time() - m if m is not None else 0.0


def read_files(files: list[Loc], columns: list[str] | None) -> tuple[list[pa.Table], list[Loc], int]:
    """Each readable file (with the wanted columns it has, plus ``key`` and ``finished_at`` to dedupe on),
    the files that cannot be read (cut short by a killed writer), and how many vanished while reading
    (replaced by a compaction)."""
    tables, bad, vanished = [], [], 0
    for i, f in enumerate(files):
        try:
            names = file_columns(f)
            wanted = dict.fromkeys([*(columns or []), "key", "finished_at"])
            want = None if columns is None else [c for c in wanted if c in names]
            t = read_file(f, want)
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


def read_table(table_dir: Loc | str, columns: list[str] | None = None) -> pa.Table | None:
    """The rows of a table folder, read only: files that cannot be read are skipped with a warning (the
    run holding the sweep's lease quarantines them: ``quarantine_unreadable``), and each key counts once
    (``dedupe``; a warning names keys written twice, e.g. by two runs at once before leases existed)."""
    table_dir = loc(table_dir)
    for _ in range(3):  # a file that vanished was replaced by a compaction: list the folder again
        tables, bad, vanished = read_files(parquet_files(table_dir), columns)
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


def done_keys(table_dir: Loc | str) -> set[str]:
    """Keys already written (ok or error): a rerun does only the rest."""
    t = read_table(table_dir, columns=["key"])
    return set() if t is None else set(t.column("key").to_pylist())


def done_items(table_dir: Loc | str) -> dict[str, int]:
    """Rows already written per work item key (a story item has one row per turn), each key once."""
    t = read_table(table_dir, columns=["key", "item_key"])
    if t is None:
        return {}
    ik = t.column("item_key") if "item_key" in t.column_names else t.column("key")
    ik = pc.coalesce(ik, t.column("key"))
    counts = pc.value_counts(ik)
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))


def _readable(f: Loc, batch_rows: int = 1 << 16) -> bool:
    """The file's footer and every page of its keys read, a batch of rows at a time (memory: one batch); a file
    that vanished meanwhile (compacted) is not unreadable."""
    try:
        with pq.ParquetFile(f.path, filesystem=f.fs) as pf:
            keys = ["key"] if "key" in pf.schema_arrow.names else None
            for _ in pf.iter_batches(batch_size=batch_rows, columns=keys):
                pass
    except FileNotFoundError:
        return True
    except Exception:  # noqa: BLE001 - any file that cannot be read is set aside, never trusted
        return False
    return True


def quarantine_unreadable(sweep_dir: Loc | str, table: str) -> list[Loc]:
    """Move the table's files that cannot be read (cut short by a killed writer) to
    ``<sweep>/quarantine/<table>/``, outside the table, so ``pd.read_parquet(<sweep>/<table>)`` works;
    ``*.parquet.partial`` files of older versions go there too, and writers' hidden temporaries are removed.
    Only the lease holder may call this: no other run writes into the folder, so nothing is in flight."""
    sweep_dir = loc(sweep_dir)
    table_dir = sweep_dir / table
    if not table_dir.is_dir():
        return []
    bad = [f for f in parquet_files(table_dir) if not _readable(f)]
    bad += table_dir.files(".partial")
    for tmp in table_dir.files(".tmp", hidden=True):
        if tmp.name.startswith("."):
            tmp.unlink()
    moved = []
    if bad:
        dest = sweep_dir / QUARANTINE / table
        taken = {f.name for f in dest.files()}
        for f in bad:
            name = f.name
            while name in taken:
                stem, dot, ext = f.name.partition(".")
                name = f"{stem}-{uuid.uuid4().hex[:6]}{dot}{ext}"
            taken.add(name)
            f.move(dest / name)
            moved.append(dest / name)
        logger.warning("%s: %d unreadable file(s) moved to %s: %s; their keys run again", table_dir, len(moved),
                       dest, ", ".join(f.name for f in bad[:10]))
    return moved


def rows_since(table_dir: Loc | str, since: str) -> int:
    """Rows written at or after ``since`` (an ISO time), file by file: a row group whose statistics end before
    it is not read, the others a batch of rows at a time (no Python object per row, memory of one batch).
    Counts rows, not keys: a key written twice (a batch run again) counts twice."""
    table_dir = loc(table_dir)
    n = 0
    for f in parquet_files(table_dir) if table_dir.is_dir() else []:
        try:
            with pq.ParquetFile(f.path, filesystem=f.fs) as pf:
                n += _rows_since(pf, since)
        except Exception:  # noqa: BLE001 - unreadable or gone: not counted (as read_table)
            continue
    return n


def _rows_since(pf, since: str) -> int:
    names = pf.schema_arrow.names
    if "finished_at" not in names:
        return 0
    n, col = 0, names.index("finished_at")
    for g in range(pf.num_row_groups):
        st = pf.metadata.row_group(g).column(col).statistics
        top = st.max if st is not None and st.has_min_max else None
        if isinstance(top, bytes):
            top = top.decode("utf-8", "replace")
        if isinstance(top, str) and top < since:
            continue  # every row of the group is older
        for b in pf.iter_batches(batch_size=1 << 16, row_groups=[g], columns=["finished_at"]):
            n += int(pc.sum(pc.fill_null(pc.greater_equal(b.column(0), since), False)).as_py() or 0)
    return n
