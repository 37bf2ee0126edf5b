"""Export reviews in the review seed's layout: ``<out>/<paper_id>/<version>_review_run<k>.json``.

``k`` counts from 0 (the seed's ``run_id``; our ``run`` is k + 1). Each file holds first the
seed's keys for the review's format, in the seed's order (e.g. SEA-E: summary, strengths,
weaknesses, questions, soundness, presentation, contribution, rating, paper_decision;
CycleReviewer: reviewers[], meta_review, the two justifications, paper_decision), then the
seed's ``paper_id``, ``version``, ``run_id``, ``model_type`` (``SEA-E``, ``CycleReviewer``,
``CriticalNeurIPS``, ``default``), ``success``, ``raw_content``, ``was_truncated``, then every
other column of our row (``model``, ``run``, ``truncation_stages``, tokens, ``parse_issues``, ...).
Scores are integers and lists are lists, as in our rows. Several models go to ``<out>/<model>/``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from longsweep.errors import InputError
from longsweep.papers.formats import PARSED_NAMES, ReviewFormat, format_for_model, get_format
from longsweep.papers.layout import check_id
from longsweep.store import Loc, loc, parquet_files, read_table

logger = logging.getLogger(__name__)

NEEDED = ("paper_id", "version", "run", "status", "model")


def _review_rows(results_dir: Loc) -> list[dict[str, Any]]:
    """The rows of ``<results_dir>/reviews`` (or of ``results_dir`` when it is that table folder)."""
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: no such results folder")
    table_dir = results_dir / "reviews" if (results_dir / "reviews").is_dir() else results_dir
    t = read_table(table_dir) if parquet_files(table_dir) else None
    if t is None:
        tables = sorted(p.name for p in results_dir.iterdir() if p.is_dir() and parquet_files(p))
        found = f"its tables: {', '.join(tables)}" if tables else "it holds no result tables"
        raise InputError(f"{results_dir}: not a review sweep, no reviews/*.parquet ({found})")
    missing = [c for c in NEEDED if c not in t.column_names]
    if missing:
        raise InputError(f"{table_dir}: not review rows (no column {', '.join(missing)}); nothing exported")
    return t.to_pylist()


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # NaN is not JSON: jq and json.load would refuse the file
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _format_of(row: dict[str, Any]) -> ReviewFormat:
    return get_format(row["review_format"]) if row.get("review_format") else format_for_model(row.get("model") or "")


def seed_record(row: dict[str, Any]) -> dict[str, Any]:
    """One review row as the seed's JSON object: its keys first, then our columns."""
    fmt = _format_of(row)
    seed = dict(fmt.parse(row["raw_content"]).seed_fields) if row.get("raw_content") else {}
    for k in seed:  # the row's columns are what the sweep accepted: they win for the shared names
        if k in PARSED_NAMES and k in row:
            seed[k] = row[k]
    obj = {**seed, "paper_id": row["paper_id"], "version": row["version"], "run_id": int(row["run"]) - 1,
           "model_type": fmt.seed_name, "success": row["status"] == "ok", "raw_content": row.get("raw_content"),
           "was_truncated": bool(row.get("was_truncated"))}
    obj.update({k: v for k, v in row.items() if k not in obj})
    return _clean(obj)


def export_reviews(results_dir: str | Path | Loc, to: Path, *, include_errors: bool = False) -> int:
    """One JSON file per ok review (and per error row with ``include_errors``, ``success`` false).
    Returns the number of files written; rows whose ids are unsafe as paths are skipped."""
    rows = _review_rows(loc(results_dir))
    models = sorted({str(r["model"]) for r in rows})
    n = 0
    for r in rows:
        if r["status"] != "ok" and not include_errors:
            continue
        if r.get("paper_id") is None or r.get("version") is None or r.get("run") is None:
            logger.warning("not exported (%s): no paper, version or run", r.get("key"))
            continue
        bad = check_id(r["paper_id"]) or check_id(r["version"], "version") or check_id(str(r["model"]), "model")
        if bad:
            logger.warning("not exported (%s): %s", r.get("key"), bad)
            continue
        base = Path(to) / str(r["model"]) if len(models) > 1 else Path(to)
        obj = seed_record(r)
        path = base / r["paper_id"] / f"{r['version']}_review_run{obj['run_id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        tmp.replace(path)
        n += 1
    return n
