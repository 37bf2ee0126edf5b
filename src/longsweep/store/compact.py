"""Compaction: a table of many small files (one per batch or per flush) rewritten into few, each key once.

Only the run holding the sweep's lease compacts. The new files are published whole under new names first,
and only then are the old files removed: a crash at any point loses nothing (at worst a key is in two files
for a while, and readers take one). Works the same on a local folder and an object store.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from longsweep.store.location import Loc, loc
from longsweep.store.tables import dedupe, parquet_files, read_file, read_files

logger = logging.getLogger(__name__)


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = [t.column(f.name).cast(f.type) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _winners(files: list[Loc]) -> dict[int, list[int]] | None:
    """Per file index, the row indices that hold each key's newest row; None when a file is unreadable."""
    keys, bad, vanished = read_files(files, ["key"])
    if bad or vanished:
        return None
    rows = pa.concat_tables([k.append_column("__row", pa.array(np.arange(k.num_rows))) for k in keys],
                            promote_options="default")
    kept, _ = dedupe(rows)
    keep: dict[int, list[int]] = {}
    for f, r in zip(kept.column("__file").to_pylist(), kept.column("__row").to_pylist()):
        keep.setdefault(f, []).append(r)
    return keep


def compact_table(table_dir: Loc | str, *, min_files: int = 16, rows_per_file: int = 250_000
                  ) -> tuple[int, int] | None:
    """Returns (files before, files after), or None when the table has fewer than ``min_files`` files or
    one of them cannot be read (the quarantine deals with it first)."""
    table_dir = loc(table_dir)
    files = parquet_files(table_dir)
    if len(files) < min_files:
        return None
    keep = _winners(files)
    if keep is None:
        logger.warning("%s: not compacted: unreadable file(s)", table_dir)
        return None
    schema = pa.unify_schemas([pq.read_schema(f.path, filesystem=f.fs) for f in files],
                              promote_options="default")
    tag, outs = uuid.uuid4().hex[:12], []
    with contextlib.ExitStack() as stack:
        try:
            writer, n_out = None, 0
            for i, f in enumerate(files):
                if writer is None or n_out >= rows_per_file:
                    stack.close()
                    outs.append(table_dir / f"compact-{tag}-{len(outs):04d}.parquet")
                    writer = pq.ParquetWriter(stack.enter_context(outs[-1].writing()), schema)
                    stack.callback(writer.close)
                    n_out = 0
                rows = read_file(f)
                mask = np.zeros(rows.num_rows, dtype=bool)
                mask[keep.get(i, [])] = True
                writer.write_table(_conform(rows.filter(pa.array(mask)), schema))
                n_out += int(mask.sum())
        except BaseException as e:
            stack.__exit__(type(e), e, e.__traceback__)  # the file being written is not published
            for dest in outs:  # not all of the new files were written: the old ones stay the table
                dest.unlink()
            raise
    for f in files:  # the new files are in place: now the old ones can go
        f.unlink()
    return len(files), len(outs)
