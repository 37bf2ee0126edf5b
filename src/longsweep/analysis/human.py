"""AI scores against human scores: a CSV with ``paperid`` and any of the metric columns (the human mean
per paper). The AI score of a paper is its runs averaged, at one version (``--human-version``)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from longsweep.analysis.tables import per_paper
from longsweep.errors import InputError

NAN = float("nan")


def load_human(path: str | Path, metrics: list[str]) -> pd.DataFrame:
    """``paper_id`` and the metric columns the file has (numeric; blanks become NaN)."""
    p = Path(path)
    try:
        df = pd.read_csv(p, dtype={"paperid": str, "paper_id": str})
    except (OSError, ValueError) as e:
        raise InputError(f"{p}: cannot read human scores ({type(e).__name__}: {e})".splitlines()[0]) from None
    idcol = "paperid" if "paperid" in df.columns else "paper_id" if "paper_id" in df.columns else None
    if idcol is None:
        raise InputError(f"{p}: no 'paperid' column")
    have = [m for m in metrics if m in df.columns]
    if not have:
        raise InputError(f"{p}: none of the columns {', '.join(metrics)}")
    out = df[[idcol] + have].rename(columns={idcol: "paper_id"})
    out["paper_id"] = out["paper_id"].astype(str).str.strip()
    for m in have:
        out[m] = pd.to_numeric(out[m], errors="coerce")
    return out


def error_stats(ai: np.ndarray, human: np.ndarray) -> dict[str, Any]:
    """MSE, MAE, RMSE, mean bias (AI - human), Pearson and Spearman (scipy) with their p-values."""
    from scipy import stats

    ai, human = np.asarray(ai, dtype=float), np.asarray(human, dtype=float)
    err = ai - human
    mse = float(np.mean(err ** 2))
    row = {"n": int(err.size), "mse": mse, "mae": float(np.mean(np.abs(err))), "rmse": math.sqrt(mse),
           "bias": float(err.mean()), "pearson_r": NAN, "pearson_p": NAN, "spearman_rho": NAN, "spearman_p": NAN,
           "note": ""}
    if err.size < 3:
        row["note"] = "fewer than 3 papers: no correlation"
    elif np.ptp(ai) == 0 or np.ptp(human) == 0:
        row["note"] = "constant scores: no correlation"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r, rp = stats.pearsonr(ai, human)
            s, sp = stats.spearmanr(ai, human)
        row.update(pearson_r=float(r), pearson_p=float(rp), spearman_rho=float(s), spearman_p=float(sp))
    return row


def compare_human(reviews: pd.DataFrame, human: pd.DataFrame, version: str,
                  metrics: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per (model, metric) present in both the reviews and the human file."""
    rows, notes = [], []
    if version not in set(reviews["version"]):
        return rows, [f"human: version {version!r} not in the reviews, comparison skipped"]
    at = reviews[reviews["version"] == version]
    for metric in [m for m in metrics if m in human.columns]:
        hm = human.loc[human[metric].notna(), ["paper_id", metric]].groupby("paper_id")[metric].mean()
        pp = per_paper(at, metric)
        if pp.empty:
            notes.append(f"human/{metric}: no AI scores at {version}, skipped")
            continue
        for model, d in pp.groupby("model", sort=True):
            joined = d.set_index("paper_id")["value"].to_frame("ai").join(hm.rename("human"), how="inner")
            unmatched = len(d) - len(joined)
            if unmatched:
                notes.append(f"human/{model}/{metric}: {unmatched} paper(s) without a human score")
            if joined.empty:
                continue
            rows.append({"model": model, "metric": metric, "version": version,
                         **error_stats(joined["ai"].to_numpy(), joined["human"].to_numpy())})
    if not rows:
        notes.append("human: no paper matched between the reviews and the human file")
    rows.sort(key=lambda r: (r["model"], metrics.index(r["metric"])))
    return rows, notes
