"""A streamed sweep's summary, counted file by file in Arrow: no Python object per row.

Each key counts once, as ``runtime/sweep.summarize`` counts it: the rows' key hashes are compared, and when a
key was written twice (a batch run again after its actor died), or the table is small, the counts are taken by
that reader instead (which also gives the prefix-cache and engine lines; a table of millions of rows has none).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.compute as pc

from longsweep.runtime.stream_hash import empty, hash_strings, unique_pairs
from longsweep.store import Loc, file_columns, parquet_files, read_file

EXACT_ROWS = 200_000  # up to this many rows, runtime/sweep.summarize counts them (as for every other job)
COLUMNS = ("key", "status", "error_kind", "completion_tokens", "finished_at", "model")


def summarize_stream(table_dir: Loc, *, total: int, skipped: int, ran: int, wall_s: float, since: str, model: str):
    from longsweep.runtime.sweep import SweepSummary, summarize
    s = SweepSummary(table_dir.parent, table_dir, total, skipped, ran, wall_s=wall_s)
    hashes, kinds, ok, tokens = [empty()], Counter(), 0, 0
    for f in parquet_files(table_dir) if table_dir.is_dir() else []:
        try:
            t = read_file(f, [c for c in COLUMNS if c in file_columns(f)])
        except Exception:  # noqa: BLE001 - unreadable or gone: not counted (as store.read_table)
            continue
        if "model" in t.column_names:
            t = t.filter(pc.fill_null(pc.equal(t.column("model"), model), False))
        if not t.num_rows:
            continue
        hashes.append(hash_strings(t.column("key")))
        is_ok = pc.fill_null(pc.equal(t.column("status"), "ok"), False)
        ok += int(pc.sum(is_ok).as_py() or 0)
        if "error_kind" in t.column_names:
            err = pc.fill_null(t.column("error_kind").filter(pc.invert(is_ok)), "unknown")
            vc = pc.value_counts(err)
            kinds.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())))
        if "completion_tokens" in t.column_names and "finished_at" in t.column_names:
            recent = pc.fill_null(pc.greater_equal(t.column("finished_at"), since), False)
            tokens += int(pc.sum(t.column("completion_tokens").filter(recent)).as_py() or 0)
    h = np.concatenate(hashes, axis=1)
    if h.shape[1] <= EXACT_ROWS or unique_pairs(h).shape[1] != h.shape[1]:
        # the table's reader (each key once, the newest row; the prefix-cache and engine lines) where the rows are
        # few enough to hold as Python objects, or where a key was written twice
        return summarize(table_dir, total=total, skipped=skipped, ran=ran, wall_s=wall_s, since=since, model=model)
    s.rows, s.ok = h.shape[1], ok
    s.errors = s.rows - ok
    s.errors_by_kind = dict(kinds)
    s.completion_tokens = tokens
    from longsweep.runtime import engine_stats
    s.engine = engine_stats.read(table_dir.parent, model)
    return s
