"""Small review tables for the compare tests, written as Parquet sweep folders in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

METRICS = ("soundness", "presentation", "contribution", "rating")


def write_table(folder: Path, rows: list[dict], n_files: int = 2) -> None:
    """``rows`` split over ``n_files`` Parquet files (and a stray non-Parquet file to be ignored)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        part = rows[i::n_files]
        if part:
            pq.write_table(pa.Table.from_pylist(part), folder / f"part-{i}.parquet")
    (folder / "README.txt").write_text("not a table")


def review(model: str, paper: str, version: str, run: int, **scores) -> dict:
    row = {"key": f"{model}|{paper}|{version}|{run}", "model": model, "status": "ok", "paper_id": paper,
           "version": version, "run": run, "confidence": 3}
    row.update({m: scores.get(m) for m in METRICS})
    return row


def synthetic(models=("alpha", "beta"), papers=8, runs=3, seed=1, versions=("v1", "latest")) -> list[dict]:
    """Scores where the revised version tends to score higher; integer sub-scores 1-4, rating 1-10."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in models:
        for p in range(papers):
            quality = rng.normal(0, 0.8)
            for vi, v in enumerate(versions):
                for r in range(runs):
                    noise = rng.normal(0, 0.6, size=4)
                    sub = [int(np.clip(round(2.5 + quality + 0.5 * vi + e), 1, 4)) for e in noise[:3]]
                    rating = int(np.clip(round(5 + 2 * quality + vi + 2 * noise[3]), 1, 10))
                    rows.append(review(m, f"P{p}", v, r, soundness=sub[0], presentation=sub[1],
                                       contribution=sub[2], rating=rating))
    return rows
