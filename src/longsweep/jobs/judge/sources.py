"""What the judge job reads: the source results folder's table and the papers' known flaws.

The source folder is only read: an unreadable Parquet file is counted and skipped, never moved.
Known flaws of a paper come from ``<papers_dir>/<paper_id>/meta.json``::

    {"flaws": ["The baseline is tuned on the test set.", "..."], "v2": {"context": "..."}}

(``flaws`` beside the per-version entries that ``papers/layout.py`` reads), or from the review seed's
pairs CSV (``--pairs-csv``): a ``paperid`` (or ``paper_id``) column and ``flaw_descriptions``, a JSON or
Python-literal list of strings. Both are read by ``papers/pairs.py``, as the review job reads them;
without either flag, the papers folder or CSV the review sweep recorded in its manifest is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsweep.errors import ConfigError, InputError
from longsweep.store import Loc, file_columns, loc, parquet_files, read_file, read_manifest

STORY_COLUMNS = ["key", "item_key", "model", "status", "sequence_id", "run", "turn", "prompt_name", "prompt",
                 "response"]
REVIEW_COLUMNS = ["key", "model", "status", "paper_id", "version", "run", "summary", "strengths", "weaknesses",
                  "questions", "raw_content"]


@dataclass
class Source:
    """The rows of the source table: ok rows to judge, and what was left out."""

    folder: Loc
    table: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # status ok, unique keys
    error_rows: int = 0  # the source's own error rows: nothing to judge
    unreadable_files: int = 0
    duplicates: int = 0


def read_source(folder: str | Path | Loc, table: str) -> Source:
    """The ok rows of ``<folder>/<table>/*.parquet``, first row per key; refuses a folder without the table."""
    folder = loc(folder)
    files = parquet_files(folder / table)
    if not files:
        raise InputError(f"{folder}: no {table}/*.parquet inside (this rubric judges the {table} of a results "
                         f"folder)")
    wanted = STORY_COLUMNS if table == "stories" else REVIEW_COLUMNS
    src = Source(folder, table)
    seen: set[str] = set()
    for f in files:
        try:
            names = file_columns(f)
            rows = read_file(f, [c for c in wanted if c in names]).to_pylist()
        except Exception:  # noqa: BLE001 - a file cut by a killed writer: skipped and counted, never moved
            src.unreadable_files += 1
            continue
        for r in rows:
            if r.get("status") != "ok":
                src.error_rows += 1
            elif r["key"] in seen:
                src.duplicates += 1
            else:
                seen.add(r["key"])
                src.rows.append({c: r.get(c) for c in wanted})
    src.rows.sort(key=lambda r: r["key"])
    return src


def recorded_inputs(folder: str | Path) -> tuple[str | None, str | None]:
    """(papers folder, pairs CSV) that a review sweep recorded in its manifest's ``config``, if any."""
    try:
        data = read_manifest(folder)
    except OSError:
        return None, None
    cfg = data.get("config") if isinstance(data, dict) else None
    if not isinstance(cfg, dict):
        return None, None
    return cfg.get("papers_dir"), cfg.get("pairs_csv")


def flaws_from_meta(papers_dir: str | Path, paper_ids: list[str]) -> dict[str, list[str]]:
    """``flaws`` of each paper's meta.json (``papers.pairs.with_meta_flaws``, the review job's reader); a
    paper without meta.json or without the list has none; a bad list is a ``ConfigError`` naming the file."""
    from longsweep.papers.layout import PaperFile
    from longsweep.papers.pairs import with_meta_flaws

    out: dict[str, list[str]] = {}
    for p in with_meta_flaws(papers_dir, [PaperFile(pid, "v1", None) for pid in sorted(set(paper_ids))]):
        if p.error:
            raise ConfigError(f"{Path(papers_dir) / p.error}")
        out[p.paper_id] = list(p.flaws)
    return out


def flaws_from_pairs(csv_path: str | Path, paper_ids: list[str]) -> dict[str, list[str]]:
    """``flaw_descriptions`` of the papers ``paper_ids`` in the review seed's pairs CSV (read by
    ``papers.pairs``, as the review job reads it); a bad list of one of them is an ``InputError`` naming the
    file, the row and the column (other rows are not this run's business)."""
    from longsweep.papers.pairs import FLAW_COLUMN, parse_flaw_list, read_pairs_file

    pf = read_pairs_file(csv_path)
    if not pf.has_flaws:
        raise InputError(f"{pf.path}: no {FLAW_COLUMN} column: the judge's flaws come from it")
    wanted, out = set(paper_ids), {}
    for n, line, cells in pf.rows:
        pid = (cells.get(pf.id_column) or "").strip()
        if pid not in wanted:
            continue
        try:
            out[pid] = parse_flaw_list(cells.get(FLAW_COLUMN))
        except ValueError as e:
            raise InputError(f"{pf.path}: row {n} (line {line}, {pf.id_column} {pid!r}): {FLAW_COLUMN}: "
                             f"{e}") from None
    return out
