"""Export reviews in the review seed's layout: ``DIR/<paper_id>/<version>_review_run<k>.json``."""

from __future__ import annotations

import json
from pathlib import Path

from longsweep.papers.layout import check_id
from longsweep.results import read_table

FIELDS = ("summary", "strengths", "weaknesses", "questions", "soundness", "presentation", "contribution",
          "rating", "confidence", "decision")


def export_reviews(results_dir: Path, to: Path) -> int:
    """One JSON file per ok review; several models go to ``<to>/<model>/``. Returns files written."""
    t = read_table(results_dir / "reviews") if (results_dir / "reviews").exists() else read_table(results_dir)
    if t is None:
        raise FileNotFoundError(f"{results_dir}: no review Parquet files")
    rows = t.to_pylist()
    models = sorted({r["model"] for r in rows})
    n = 0
    for r in rows:
        if r["status"] != "ok" or check_id(r["paper_id"]) or check_id(r["version"], "version"):
            continue
        base = to / r["model"] if len(models) > 1 else to
        d = base / r["paper_id"]
        d.mkdir(parents=True, exist_ok=True)
        obj = {"paper_id": r["paper_id"], "version": r["version"], "run_id": r["run"], "model_type": r["model"],
               "was_truncated": r["was_truncated"], "truncation_stages": r["truncation_stages"],
               **{k: r[k] for k in FIELDS}, "raw_content": r["raw_content"]}
        (d / f"{r['version']}_review_run{r['run']}.json").write_text(json.dumps(obj, indent=2))
        n += 1
    return n
