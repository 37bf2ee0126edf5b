"""The sweep store: one sweep folder, on a local disk, a shared mount, or an object store.

Every reader and writer of a sweep's files goes through this package: ``Loc`` (where, on which
``pyarrow.fs`` filesystem), the tables (``read_table``, ``done_items``, ``publish_table``, quarantine),
compaction, the manifest and the lease. Layout of a sweep folder::

    <out>/                     a local path, s3://bucket/prefix, gs://bucket/prefix
        manifest.json          what ran, with what, when, counts (store/manifest.py)
        lease.json             the one run writing now (store/lease.py)
        <table>/*.parquet      rows: one per work item (reviews, generations) or per turn (stories)
        quarantine/<table>/    files that could not be read (cut short by a killed writer)
        retried/<table>/       rows replaced by --retry-errors (store/retried.py)
"""

from longsweep.store.compact import compact_table
from longsweep.store.location import Loc, is_uri, loc
from longsweep.store.manifest import MANIFEST, git_revision, package_versions, read_manifest, write_manifest
from longsweep.store.tables import (QUARANTINE, dedupe, done_items, done_keys, file_columns, parquet_files, publish_table,
                                    quarantine_unreadable, read_file, read_table, replace_file, rows_since)

__all__ = ["Loc", "loc", "is_uri", "compact_table", "MANIFEST", "git_revision", "package_versions", "read_manifest",
           "write_manifest", "QUARANTINE", "dedupe", "done_items", "done_keys", "parquet_files", "publish_table",
           "quarantine_unreadable", "read_file", "read_table", "replace_file", "file_columns", "rows_since"]
