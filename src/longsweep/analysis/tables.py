"""Load review tables from sweep folders and average runs per (model, paper, version).

A sweep folder holds ``reviews/*.parquet`` and, for multi-reviewer models such as CycleReviewer,
optionally ``reviewers/*.parquet`` (one row per reviewer of a review). Only ``status == "ok"`` rows
count. Files not ending ``.parquet`` are ignored; an unreadable file is skipped with a note (never
renamed: this command only reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from longsweep.analysis import METRICS
from longsweep.errors import InputError
from longsweep.store import Loc, file_columns, loc, parquet_files, read_file

ID_COLUMNS = ["key", "model", "status", "paper_id", "version", "run"]
SCORE_COLUMNS = [*METRICS, "confidence"]
REVIEWER_ID_COLUMNS = ["key", "model", "status", "paper_id", "version", "run", "reviewer"]


@dataclass
class Loaded:
    """The ok rows of every input sweep, and what was skipped on the way."""

    reviews: pd.DataFrame
    reviewers: pd.DataFrame | None
    sources: list[str]
    notes: list[str] = field(default_factory=list)


def sweep_dirs(path: Loc) -> list[Loc]:
    """``path`` itself when it holds ``reviews/``, else its sub-folders that do."""
    if not path.is_dir():
        raise InputError(f"{path}: not a folder")
    if (path / "reviews").is_dir():
        return [path]
    return [p for p in path.folders() if (p / "reviews").is_dir()]


def _read_folder(folder: Loc, wanted: list[str], notes: list[str]) -> pd.DataFrame | None:
    frames = []
    for f in parquet_files(folder):
        try:
            names = file_columns(f)
            frames.append(read_file(f, [c for c in wanted if c in names]).to_pandas())
        except Exception as e:  # noqa: BLE001 - a bad file is reported and skipped, the rest still counts
            notes.append(f"{folder.name}/{f.name}: unreadable, skipped ({type(e).__name__})")
    frames = [f for f in frames if len(f.columns)]
    return pd.concat(frames, ignore_index=True) if frames else None


def _normalise(df: pd.DataFrame, ids: list[str], table: str, notes: list[str]) -> pd.DataFrame:
    for c in ids + SCORE_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    for c in SCORE_COLUMNS + ["run", "reviewer"]:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    if df["status"].notna().any():
        bad = int((df["status"] != "ok").sum())
        if bad:
            notes.append(f"{table}: {bad} row(s) with status != 'ok' left out")
        df = df[df["status"] == "ok"]
    missing = df[["model", "paper_id", "version"]].isna().any(axis=1)
    if missing.any():
        notes.append(f"{table}: {int(missing.sum())} ok row(s) without model/paper_id/version left out")
    df = df[~missing].copy()
    for c in ("model", "paper_id", "version"):
        df[c] = df[c].astype(str)
    if len(df) and df["key"].notna().all():  # without keys there is nothing to tell duplicates by
        before = len(df)
        df = df.drop_duplicates(subset=["key", "reviewer"] if "reviewer" in ids else ["key"], keep="first")
        if len(df) < before:
            notes.append(f"{table}: {before - len(df)} duplicate key(s) across inputs, first kept")
    return df.reset_index(drop=True)


def load(paths: list[str | Path]) -> Loaded:
    """Every ``reviews`` (and ``reviewers``) table under the given sweep folders."""
    notes: list[str] = []
    reviews, reviewers, sources = [], [], []
    for raw in paths:
        dirs = sweep_dirs(loc(raw))
        if not dirs:
            raise InputError(f"{raw}: no reviews/ table inside (expected <sweep>/reviews/*.parquet)")
        for d in dirs:
            df = _read_folder(d / "reviews", ID_COLUMNS + SCORE_COLUMNS, notes)
            if df is None:
                raise InputError(f"{d}: reviews/ holds no readable .parquet file")
            reviews.append(df)
            sources.append(str(d))
            if (d / "reviewers").is_dir():
                rv = _read_folder(d / "reviewers", REVIEWER_ID_COLUMNS + SCORE_COLUMNS, notes)
                if rv is not None:
                    reviewers.append(rv)
    rev = _normalise(pd.concat(reviews, ignore_index=True), ID_COLUMNS, "reviews", notes)
    if rev.empty:
        raise InputError(f"{', '.join(map(str, paths))}: no ok review rows")
    rvw = None
    if reviewers:
        rvw = _normalise(pd.concat(reviewers, ignore_index=True), REVIEWER_ID_COLUMNS, "reviewers", notes)
    return Loaded(rev, rvw, sources, notes)


def per_paper(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Runs averaged per (model, paper_id, version): columns ``value`` (mean) and ``n_runs`` (non-null runs)."""
    d = df.loc[df[metric].notna(), ["model", "paper_id", "version", metric]]
    g = d.groupby(["model", "paper_id", "version"], sort=True)[metric]
    return g.agg(value="mean", n_runs="count").reset_index()


def pairs(pp: pd.DataFrame, model: str, base: str, revised: str) -> tuple[pd.DataFrame, int]:
    """Papers of ``model`` with both versions: index paper_id, columns base, revised, diff (revised - base).
    Also returns how many papers had only one of the two versions."""
    m = pp[(pp["model"] == model) & pp["version"].isin([base, revised])]
    wide = m.pivot(index="paper_id", columns="version", values="value")
    for v in (base, revised):
        if v not in wide.columns:
            wide[v] = np.nan
    wide = wide[[base, revised]]
    wide.columns = ["base", "revised"]
    both = wide.dropna()
    both = both.assign(diff=both["revised"] - both["base"])
    return both.sort_index(), int(len(wide) - len(both))
