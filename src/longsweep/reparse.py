"""The ``reparse`` subcommand: re-derive the parsed columns of review rows from their ``raw_content``.

    longsweep reparse RESULTS [RESULTS ...] [--format NAME] [--dry-run]

A parser fix never needs the GPUs again: every row that kept its answer (``raw_content``) and is ``ok`` or
an ``unparseable_review`` error is read again by its format's current parser (the row's ``review_format``,
else the sweep's ``--format``, else the model's registry ``prompt_family``, else the format its name
suggests; ``--format`` overrides them all). The parsed columns and ``parse_issues`` are replaced, and the
status follows the parser: an answer it can now use becomes ``ok`` (error cleared), one it can no longer
use becomes an ``unparseable_review`` error. ``finished_at`` stays, so a row keeps its place; the
``reviewers`` table is rebuilt from the same parses.

In place and safely, holding the sweep folder's lease (a sweep writing there is refused, and refuses to
start meanwhile): every new file is written first under a temporary name, and only then does each replace
its old file (one rename each: a reader sees the old file or the new one). A run cut short leaves some
files reparsed and the others as they were, and running it again finishes the job (a run killed outright
leaves its temporaries, ``.reparse-*.tmp``: the next reparse, or the next sweep holding the lease, removes
them). The manifest records each reparse. A ``reviews/`` folder whose files are not review rows, or a
folder whose ``manifest.json`` is not a sweep's, is refused in one line before anything is written.
``add_parser(subparsers)`` adds the subcommand; ``run(args)`` runs it (exit 0).
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import logging
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from longsweep.store import Loc, file_columns, loc, parquet_files, read_file, read_manifest

from longsweep.errors import ErrorKind, InputError

logger = logging.getLogger(__name__)

UNPARSEABLE = ErrorKind.UNPARSEABLE_REVIEW.value
REVIEW_ID_COLUMNS = ("key", "paper_id", "version", "status", "raw_content")  # what makes a file review rows
LEFTOVER = ".reparse-*.tmp"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``reparse`` to an ``argparse`` sub-parsers object; returns the new parser."""
    p = subparsers.add_parser("reparse", help="re-derive parsed review columns from raw_content, in place",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="sweep folders (<sweep>/reviews/*.parquet) or folders of them")
    p.add_argument("--format", default=None, help="parse every row with this format (default: the row's own)")
    p.add_argument("--dry-run", action="store_true", help="count what would change; write nothing")
    p.add_argument("--models-file", default=None, help="model registry (a row's format falls back to its model's)")
    p.add_argument("--verbose", "-v", action="store_true", help="more logging")
    return p


@dataclass
class Reparsed:
    """What one sweep folder's reparse did (or would do, dry)."""

    sweep_dir: Loc
    rows: int = 0
    reparsed: int = 0
    changed: int = 0
    now_ok: int = 0  # unparseable_review -> ok
    now_unparseable: int = 0  # ok -> unparseable_review
    files_rewritten: int = 0
    unreadable: list[str] = field(default_factory=list)
    reviewer_rows: int = 0

    def line(self) -> str:
        bad = f"; {len(self.unreadable)} unreadable file(s) left as they are" if self.unreadable else ""
        return (f"{self.sweep_dir}: {self.reparsed} of {self.rows} rows reparsed, {self.changed} changed "
                f"(unparseable -> ok: {self.now_ok}, ok -> unparseable: {self.now_unparseable}); "
                f"{self.files_rewritten} file(s) rewritten, {self.reviewer_rows} reviewer rows{bad}")


class _Formats:
    """The parser of each row: ``--format``, the row's ``review_format``, the sweep's, the model's."""

    def __init__(self, sweep_dir: Loc, override: str | None, models_file: str | None = None):
        from longsweep.papers.formats import get_format
        self.override = get_format(override) if override else None
        self.models_file = models_file
        self.sweep_format = _sweep_format(sweep_dir)
        self.cache: dict[str, Any] = {}

    def __call__(self, row: dict[str, Any]):
        from longsweep.papers.formats import format_for_model, get_format
        if self.override is not None:
            return self.override
        name = row.get("review_format")
        if name and name != "none":
            return self.cache.setdefault(name, get_format(name))
        model = row.get("model") or ""
        if model not in self.cache:
            self.cache[model] = format_for_model(model, self.sweep_format or _registry_family(model, self.models_file))
        return self.cache[model]


def _sweep_format(sweep_dir: Loc) -> str | None:
    try:
        data = read_manifest(sweep_dir) or {}
        return ((data.get("config") or {}).get("options") or {}).get("format")
    except (OSError, AttributeError):
        return None


def _registry_family(model: str, models_file: str | None) -> str | None:
    from longsweep.config import get_model
    try:
        return get_model(model, models_file).prompt_family
    except Exception:  # noqa: BLE001 - a model no longer in the registry: the name decides
        return None


def reparse_row(row: dict[str, Any], fmt) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The row with its parsed columns, ``parse_issues`` and status re-derived, and its reviewer rows."""
    from longsweep.jobs.review.record import reviewer_rows, unparseable_error
    try:
        p = fmt.parse(row["raw_content"])
    except Exception as e:  # noqa: BLE001 - one answer that breaks its parser is its own row's error
        why = f"reparse: the parser failed on this answer ({type(e).__name__}: {e})"
        return {**row, "status": "error", "error_kind": UNPARSEABLE, "error": why}, []
    new = {**row, **p.fields(), "parse_issues": list(p.issues)}
    if p.ok and row.get("status") != "ok":
        new.update(status="ok", error=None, error_kind=None)
    elif not p.ok and row.get("status") == "ok":
        new.update(status="error", error_kind=UNPARSEABLE, error="reparse: " + unparseable_error(p.issues))
    return new, reviewer_rows(new, p.reviewers())


def _eligible(row: dict[str, Any]) -> bool:
    return row.get("raw_content") is not None and (row.get("status") == "ok" or row.get("error_kind") == UNPARSEABLE)


def _schema(file_schema: pa.Schema) -> pa.Schema:
    """The file's own columns, then those of today's review rows it lacks (a format added a column)."""
    from longsweep.jobs.review import ReviewJob
    extra = [f for f in ReviewJob.schema() if f.name not in file_schema.names]
    return pa.schema(list(file_schema) + extra)


def _tmp(dest: Loc, tag: str) -> Loc:
    return dest.parent / f".reparse-{tag}-{dest.name}.tmp"  # matches LEFTOVER


def remove_leftovers(sweep_dir: str | Loc) -> int:
    """Remove the temporaries of a reparse that was killed outright (in any table of the folder); returns
    how many. Only the lease holder may call this: no reparse is running then."""
    n = 0
    for table in loc(sweep_dir).folders():
        for tmp in table.files(".tmp", hidden=True):
            if fnmatch.fnmatch(tmp.name, LEFTOVER):
                tmp.unlink()
                n += 1
    if n:
        logger.warning("%s: removed %d temporary file(s) left by a reparse that was cut short", sweep_dir, n)
    return n


def check_review_table(sweep_dir: str | Loc) -> None:
    """Raise ``InputError`` when a readable file of ``<sweep>/reviews`` does not hold review rows."""
    table = loc(sweep_dir) / "reviews"
    for f in parquet_files(table):
        try:
            names = file_columns(f)
        except Exception:  # noqa: BLE001 - unreadable: left as it is and reported by the reparse
            continue
        missing = [c for c in REVIEW_ID_COLUMNS if c not in names]
        if missing:
            raise InputError(f"{table}: not review rows ({f.name} has no column {', '.join(missing)}); "
                             f"reparse reads review sweeps only; nothing was rewritten")


def _write(t: pa.Table, tmp: Loc) -> None:
    buf = io.BytesIO()
    pq.write_table(t, buf)
    tmp.publish(buf.getvalue())


def _reparse_rows(rows: list[dict[str, Any]], formats: _Formats, res: Reparsed,
                  reviewers: dict[tuple, tuple[str, dict[str, Any]]]) -> bool:
    """Reparse one file's rows in place (counted in ``res``, their reviewers kept in ``reviewers``: a key
    written twice gets the reviewers of its newest row); True when some row changed."""
    changed = False
    for i, row in enumerate(rows):
        if not _eligible(row):
            continue
        new, rvs = reparse_row(row, formats(row))
        res.reparsed += 1
        for rv in rvs:
            k = (rv["key"], rv["reviewer"])
            if k not in reviewers or (rv["finished_at"] or "") >= reviewers[k][0]:
                reviewers[k] = (rv["finished_at"] or "", rv)
        if any(new.get(c) != row.get(c) for c in new):
            res.changed += 1
            res.now_ok += row.get("status") != "ok" and new["status"] == "ok"
            res.now_unparseable += row.get("status") == "ok" and new["status"] != "ok"
            rows[i], changed = new, True
    return changed


def reparse_sweep(sweep_dir: str | Loc, *, fmt: str | None = None, dry_run: bool = False,
                  models_file: str | None = None) -> Reparsed:
    """Reparse one sweep folder's ``reviews`` (see the module's docstring). The caller holds the lease."""
    from longsweep.jobs.review.record import REVIEWER_SCHEMA, REVIEWERS_TABLE
    from longsweep.results import to_table
    sweep_dir = loc(sweep_dir)
    files = parquet_files(sweep_dir / "reviews")
    if not files:
        raise InputError(f"{sweep_dir}: no reviews/*.parquet inside")
    check_review_table(sweep_dir)
    if not dry_run:
        remove_leftovers(sweep_dir)
    formats, res, tag = _Formats(sweep_dir, fmt, models_file), Reparsed(sweep_dir), uuid.uuid4().hex[:10]
    pending: list[tuple[Loc, Loc]] = []  # (temporary file, the file it replaces)
    reviewers: dict[tuple, tuple[str, dict[str, Any]]] = {}  # (key, reviewer) -> (finished_at, row)
    rdir = sweep_dir / REVIEWERS_TABLE
    try:
        for f in files:
            try:
                t = read_file(f)
            except Exception:  # noqa: BLE001 - a file cut short by a killed writer: not ours to mend
                res.unreadable.append(f.name)
                continue
            rows = t.to_pylist()
            res.rows += len(rows)
            schema = _schema(t.schema)
            if _reparse_rows(rows, formats, res, reviewers) or schema != t.schema:
                pending.append((_tmp(f, tag), f))
                if not dry_run:
                    _write(to_table(rows, schema), pending[-1][0])
        res.reviewer_rows = len(reviewers)
        # the reviewers table is rebuilt only from every review row
        old_reviewers = [] if dry_run or res.unreadable else parquet_files(rdir)
        if reviewers and not dry_run and not res.unreadable:
            new_file = rdir / f"reparse-{tag}.parquet"
            pending.append((_tmp(new_file, tag), new_file))
            _write(to_table([r for _, r in reviewers.values()], REVIEWER_SCHEMA), pending[-1][0])
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink()
        raise
    res.files_rewritten = sum(1 for _, dest in pending if dest.parent.name == "reviews")
    if dry_run:
        return res
    for tmp, dest in pending:  # every new file is written: now each replaces its old one (a rename; on an
        tmp.move(dest)        # object store a server-side copy, whole, then the temporary is deleted)
    for old in old_reviewers:  # the rebuilt reviewers table is in place: the old files go
        old.unlink()
    return res


def _sweeps(paths: list[str]) -> list[Loc]:
    out = []
    for raw in paths:
        p = loc(raw)
        if not p.is_dir():
            raise InputError(f"{p}: not a folder")
        found = [p] if (p / "reviews").is_dir() else [d for d in p.folders() if (d / "reviews").is_dir()]
        if not found:
            raise InputError(f"{p}: no reviews/ table inside (expected <sweep>/reviews/*.parquet)")
        out += found
    from longsweep.store.folder import check_sweep_folder
    for sweep in out:  # every folder is checked before any is rewritten
        check_sweep_folder(sweep)
        check_review_table(sweep)
    return out


def run(args: argparse.Namespace) -> int:
    """Reparse every sweep folder given, each under its lease; print one line per folder."""
    from longsweep.results import now_iso
    from longsweep.store import write_manifest
    from longsweep.store.lease import hold
    kw = {"fmt": args.format, "models_file": getattr(args, "models_file", None)}
    for sweep in _sweeps(args.results):
        if args.dry_run:
            print("dry run: " + reparse_sweep(sweep, dry_run=True, **kw).line())
            continue
        with hold(sweep, command=" ".join(["longsweep", *sys.argv[1:]])):
            res = reparse_sweep(sweep, **kw)
            write_manifest(sweep, reparse={"at": now_iso(), "format": args.format, "rows": res.rows,
                                           "reparsed": res.reparsed, "changed": res.changed, "now_ok": res.now_ok,
                                           "now_unparseable": res.now_unparseable,
                                           "files_rewritten": res.files_rewritten,
                                           "reviewer_rows": res.reviewer_rows, "unreadable": res.unreadable})
        print(res.line())
    return 0
