"""Reliability: run-to-run consistency, agreement between models and between a model's reviewers.

ICC follows Shrout & Fleiss (1979), from the ANOVA mean squares:
  ICC(1)   one-way random, single measure: targets rated by different, exchangeable raters (our runs);
  ICC(2,1) two-way random, absolute agreement, single measure;
  ICC(3,1) two-way mixed, consistency, single measure (a rater's constant offset does not count).
Krippendorff's alpha (2011, "Computing Krippendorff's alpha-reliability") from the coincidence matrix,
with the nominal, ordinal or interval difference; units with fewer than two values are not pairable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

NAN = float("nan")


def icc_oneway(groups: list[np.ndarray]) -> float:
    """ICC(1) from one-way ANOVA; groups may differ in size (n0 = (N - sum n_i^2 / N) / (a - 1))."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g) >= 1]
    a, big_n = len(groups), sum(g.size for g in groups)
    if a < 2 or big_n - a < 1:
        return NAN
    grand = np.concatenate(groups).mean()
    msb = sum(g.size * (g.mean() - grand) ** 2 for g in groups) / (a - 1)
    msw = sum(((g - g.mean()) ** 2).sum() for g in groups) / (big_n - a)
    n0 = (big_n - sum(g.size ** 2 for g in groups) / big_n) / (a - 1)
    den = msb + (n0 - 1) * msw
    return float((msb - msw) / den) if den > 0 else NAN


def icc_twoway(x: np.ndarray) -> dict[str, float]:
    """ICC(1), ICC(2,1) and ICC(3,1) of a complete targets x raters matrix (Shrout & Fleiss 1979)."""
    x = np.asarray(x, dtype=float)
    n, k = x.shape if x.ndim == 2 else (0, 0)
    if n < 2 or k < 2 or np.isnan(x).any():
        return {"icc1": NAN, "icc2_1": NAN, "icc3_1": NAN}
    grand = x.mean()
    rows, cols = x.mean(axis=1), x.mean(axis=0)
    ssr, ssc = k * ((rows - grand) ** 2).sum(), n * ((cols - grand) ** 2).sum()
    sse = ((x - rows[:, None] - cols[None, :] + grand) ** 2).sum()
    msr, msc = ssr / (n - 1), ssc / (k - 1)
    mse, msw = sse / ((n - 1) * (k - 1)), (ssc + sse) / (n * (k - 1))

    def ratio(num: float, den: float) -> float:
        return float(num / den) if den > 0 else NAN

    return {"icc1": ratio(msr - msw, msr + (k - 1) * msw),
            "icc2_1": ratio(msr - mse, msr + (k - 1) * mse + k * (msc - mse) / n),
            "icc3_1": ratio(msr - mse, msr + (k - 1) * mse)}


def _delta(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(values.size)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ordinal":
        cum = np.cumsum(n_c)
        lo = np.minimum.outer(np.arange(values.size), np.arange(values.size))
        hi = np.maximum.outer(np.arange(values.size), np.arange(values.size))
        between = cum[hi] - np.where(lo > 0, cum[lo - 1], 0.0)  # sum of n_g for g from c to k
        return (between - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    raise ValueError(f"unknown level of measurement {level!r}")


def krippendorff_alpha(data, level: str = "ordinal") -> float:
    """Krippendorff's alpha of a raters x units matrix; NaN marks a missing value."""
    x = np.asarray(data, dtype=float)
    values = np.unique(x[np.isfinite(x)])
    if values.size == 0:
        return NAN
    coinc = np.zeros((values.size, values.size))
    for unit in x.T:
        v = unit[np.isfinite(unit)]
        if v.size < 2:
            continue
        cnt = np.bincount(np.searchsorted(values, v), minlength=values.size).astype(float)
        coinc += (np.outer(cnt, cnt) - np.diag(cnt)) / (v.size - 1)
    n_c = coinc.sum(axis=1)
    n = n_c.sum()
    if n < 2:
        return NAN
    delta = _delta(values, n_c, level)
    expected = (np.outer(n_c, n_c) * delta).sum()
    if expected == 0:
        return NAN
    return float(1.0 - (n - 1) * (coinc * delta).sum() / expected)


def agreement_row(wide: pd.DataFrame) -> dict[str, Any]:
    """Alpha (ordinal, interval) over all units and ICC over the complete ones of a units x raters table."""
    complete = wide.dropna()
    return {"n_units": int(wide.notna().sum(axis=1).ge(2).sum()), "n_raters": int(wide.shape[1]),
            "n_complete": int(len(complete)),
            "alpha_ordinal": krippendorff_alpha(wide.to_numpy().T, "ordinal"),
            "alpha_interval": krippendorff_alpha(wide.to_numpy().T, "interval"),
            **{k: v for k, v in icc_twoway(complete.to_numpy()).items() if k != "icc1"}}


def run_consistency(reviews: pd.DataFrame, metrics: list[str]) -> list[dict[str, Any]]:
    """Per (model, metric): mean within-(paper, version) sd across runs (ddof=1) and ICC(1) with runs as
    exchangeable raters, over the (paper, version) cells with at least two scored runs."""
    out = []
    for model, d in sorted(reviews.groupby("model"), key=lambda kv: kv[0]):
        for metric in metrics:
            cells = [g.to_numpy(dtype=float) for _, g in
                     d.loc[d[metric].notna()].groupby(["paper_id", "version"])[metric]]
            multi = [c for c in cells if c.size >= 2]
            if not multi:
                continue
            out.append({"model": model, "metric": metric, "n_cells": len(multi),
                        "runs_per_cell": float(np.mean([c.size for c in multi])),
                        "mean_within_sd": float(np.mean([c.std(ddof=1) for c in multi])),
                        "icc1": icc_oneway(multi)})
    return out


def between_models(reviews: pd.DataFrame, metrics: list[str]) -> list[dict[str, Any]]:
    """Models as raters of the same (paper, version), each model's runs averaged first."""
    out = []
    if reviews["model"].nunique() < 2:
        return out
    for metric in metrics:
        d = reviews.loc[reviews[metric].notna()]
        wide = d.groupby(["paper_id", "version", "model"])[metric].mean().unstack("model")
        if wide.shape[1] < 2 or wide.empty:
            continue
        out.append({"metric": metric, **agreement_row(wide)})
    return out


def between_reviewers(reviewers: pd.DataFrame | None, metrics: list[str]) -> list[dict[str, Any]]:
    """Per model: its reviewers (1-based index) as raters of each review (paper, version, run)."""
    out = []
    if reviewers is None or reviewers.empty:
        return out
    for model, d in sorted(reviewers.groupby("model"), key=lambda kv: kv[0]):
        for metric in metrics:
            dm = d.loc[d[metric].notna()]
            wide = dm.groupby(["paper_id", "version", "run", "reviewer"])[metric].mean().unstack("reviewer")
            if wide.shape[1] < 2 or wide.empty:
                continue
            out.append({"model": model, "metric": metric, **agreement_row(wide)})
    return out
