"""Rows written by the worker as they finish (story turns), in small buffered flushes.

A flush publishes one whole Parquet file into the table folder through the store (a local folder, a shared
mount or an object store: ``store.publish_table``), so a reader never sees a file without its footer; a
killed worker loses at most the rows of one buffer.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from longsweep.results import to_table
from longsweep.store import Loc, loc, publish_table, read_table

logger = logging.getLogger(__name__)


class RowSink:
    def __init__(self, table_dir: str | Path | Loc, schema: pa.Schema, *, max_rows: int = 64, max_age_s: float = 5.0):
        self.dir, self.schema = loc(table_dir), schema
        self.max_rows, self.max_age_s = max_rows, max_age_s
        self._rows: list[dict[str, Any]] = []
        self._since = time.monotonic()
        self._lock = threading.Lock()
        self.written = 0
        self._existing: dict[str, list[dict[str, Any]]] | None = None

    def existing(self, item_key: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
        """Rows of ``item_key`` already in the table when this worker first asked (an interrupted story,
        or a batch that Ray runs again after its actor died), sorted by key."""
        if self._existing is None:
            t = read_table(self.dir, columns=["key", "item_key", *columns])
            self._existing = {}
            for r in (t.to_pylist() if t is not None else []):
                self._existing.setdefault(r.get("item_key") or r["key"], []).append(r)
            for rows in self._existing.values():
                rows.sort(key=lambda r: r["key"])
        return self._existing.get(item_key, [])

    def add(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            if not self._rows:
                self._since = time.monotonic()
            self._rows.extend(rows)
            due = len(self._rows) >= self.max_rows or time.monotonic() - self._since >= self.max_age_s
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        dest = publish_table(self.dir, to_table(rows, self.schema))
        self.written += len(rows)
        logger.info("sink: %d rows -> %s", len(rows), dest.name)
