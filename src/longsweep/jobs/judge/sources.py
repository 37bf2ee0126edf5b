"""What the judge job reads: the source results folder's table and the papers' known flaws.

The source folder is only read: an unreadable Parquet file is counted and skipped, never moved.
Known flaws of a paper come from ``<papers_dir>/<paper_id>/meta.json``::

    {"flaws": ["The baseline is tuned on the test set.", "..."], "v2": {"context": "..."}}

(``flaws`` beside the per-version entries that ``papers/layout.py`` reads), or from the review seed's
pairs CSV (``--pairs-csv``): a ``paperid`` (or ``paper_id``) column and ``flaw_descriptions``, a JSON or
Python-literal list of strings.
"""

from __future__ import annotations

import ast
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from longsweep.config import validate
from longsweep.errors import ConfigError, InputError

STORY_COLUMNS = ["key", "item_key", "model", "status", "sequence_id", "run", "turn", "prompt_name", "prompt",
                 "response"]
REVIEW_COLUMNS = ["key", "model", "status", "paper_id", "version", "run", "summary", "strengths", "weaknesses",
                  "questions", "raw_content"]


@dataclass
class Source:
    """The rows of the source table: ok rows to judge, and what was left out."""

    folder: Path
    table: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # status ok, unique keys
    error_rows: int = 0  # the source's own error rows: nothing to judge
    unreadable_files: int = 0
    duplicates: int = 0


def read_source(folder: str | Path, table: str) -> Source:
    """The ok rows of ``<folder>/<table>/*.parquet``, first row per key; refuses a folder without the table."""
    folder = Path(folder)
    tdir = folder / table
    files = sorted(f for f in tdir.glob("*.parquet") if f.is_file()) if tdir.is_dir() else []
    if not files:
        raise InputError(f"{folder}: no {table}/*.parquet inside (this rubric judges the {table} of a results "
                         f"folder)")
    wanted = STORY_COLUMNS if table == "stories" else REVIEW_COLUMNS
    src = Source(folder, table)
    seen: set[str] = set()
    for f in files:
        try:
            names = pq.read_schema(f).names
            rows = pq.read_table(f, columns=[c for c in wanted if c in names]).to_pylist()
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


def source_papers_dir(folder: str | Path) -> str | None:
    """The papers folder a review sweep recorded in its manifest (``config.papers_dir``), if any."""
    try:
        data = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    cfg = data.get("config") if isinstance(data, dict) else None
    return cfg.get("papers_dir") if isinstance(cfg, dict) else None


class _Flaws(BaseModel):
    model_config = ConfigDict(extra="allow")  # the per-version entries are layout.py's business
    flaws: list[str] = Field(default_factory=list)


def _clean(flaws: list[str], where: str) -> list[str]:
    out = [f.strip() for f in flaws]
    if any(not f for f in out):
        raise ConfigError(f"{where}: flaws: empty flaw description")
    return out


def flaws_from_meta(papers_dir: str | Path, paper_ids: list[str]) -> dict[str, list[str]]:
    """``flaws`` of each paper's meta.json; a paper without meta.json or without the list has none."""
    out: dict[str, list[str]] = {}
    for pid in sorted(set(paper_ids)):
        p = Path(papers_dir) / pid / "meta.json"
        if not p.is_file():
            continue
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: not valid JSON ({e})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: expected an object (\"flaws\": [...] beside the versions)")
        out[pid] = _clean(validate(_Flaws, raw, str(p)).flaws, str(p))
    return out


def parse_flaw_list(text: str) -> list[str]:
    """A JSON list or a Python-literal list of strings (the review seed writes ``repr`` of a list)."""
    text = (text or "").strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"neither a JSON nor a Python list ({type(e).__name__})") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {type(value).__name__}")
    return list(value)


def flaws_from_pairs(csv_path: str | Path) -> dict[str, list[str]]:
    """``flaw_descriptions`` per paper id of a pairs CSV; errors name the file, the row and the column."""
    path = Path(csv_path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: not a readable CSV ({e})") from None
    id_col = "paperid" if "paperid" in header else "paper_id" if "paper_id" in header else None
    if id_col is None or "flaw_descriptions" not in header:
        raise InputError(f"{path}: needs columns paperid (or paper_id) and flaw_descriptions; found "
                         f"{', '.join(header) or 'none'}")
    out: dict[str, list[str]] = {}
    for i, r in enumerate(rows, start=2):  # line 1 is the header
        pid = (r.get(id_col) or "").strip()
        try:
            flaws = parse_flaw_list(r.get("flaw_descriptions") or "")
        except ValueError as e:
            raise InputError(f"{path}: line {i} ({id_col} {pid!r}): flaw_descriptions: {e}") from None
        if not pid:
            raise InputError(f"{path}: line {i}: {id_col} is empty")
        out[pid] = _clean(flaws, f"{path}: line {i} ({id_col} {pid!r})")
    return out
