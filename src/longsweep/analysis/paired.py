"""Paired base-vs-revised statistics, one row per (model, metric).

Runs are averaged per (paper, version) first and the pairs are papers: the runs of one paper are
repeated measurements of the same thing, not independent papers, so pairing (paper, run) would
inflate n and shrink every p-value.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from longsweep.analysis.tables import Loaded, pairs, per_paper
from longsweep.errors import InputError

NAN = float("nan")


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN and is not
    counted among the m hypotheses."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, NAN)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        out[i] = min(1.0, running)
    return out


def bootstrap(diff: np.ndarray, n_boot: int, seed: int, level: float = 0.95, chunk: int = 2000) -> dict[str, float]:
    """Percentile bootstrap CIs of the mean difference and of d_z: papers resampled with replacement,
    ``numpy.random.default_rng(seed)``, ``n_boot`` resamples (drawn in chunks, same stream)."""
    n = diff.size
    if n < 2 or n_boot < 1:
        return {"boot_low": NAN, "boot_high": NAN, "dz_boot_low": NAN, "dz_boot_high": NAN}
    rng = np.random.default_rng(seed)
    means, dzs = [], []
    for start in range(0, n_boot, chunk):
        sample = diff[rng.integers(0, n, size=(min(chunk, n_boot - start), n))]
        mu, sd = sample.mean(axis=1), sample.std(axis=1, ddof=1)
        means.append(mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            dzs.append(np.where(sd > 0, mu / np.where(sd > 0, sd, 1.0), NAN))
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    lo, hi = np.percentile(np.concatenate(means), q)
    dz = np.concatenate(dzs)
    dz_lo, dz_hi = np.nanpercentile(dz, q) if np.isfinite(dz).any() else (NAN, NAN)
    return {"boot_low": float(lo), "boot_high": float(hi), "dz_boot_low": float(dz_lo), "dz_boot_high": float(dz_hi)}


def _wilcoxon(diff: np.ndarray) -> tuple[float, float, str | None]:
    from scipy import stats

    if diff.size == 0 or not np.any(diff != 0):
        return NAN, 1.0, "all differences are zero: Wilcoxon p set to 1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.wilcoxon(diff)
    return float(res.statistic), float(res.pvalue), None


def paired_test(base: np.ndarray, revised: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Paired t (scipy.stats.ttest_rel), Wilcoxon signed-rank, Cohen's d_z, t and bootstrap 95% CIs
    of the mean difference (revised - base)."""
    from scipy import stats

    base, revised = np.asarray(base, dtype=float), np.asarray(revised, dtype=float)
    diff = revised - base
    n = diff.size
    row: dict[str, Any] = {"n": n, "mean_base": float(base.mean()), "mean_revised": float(revised.mean()),
                           "mean_diff": float(diff.mean()), "sd_diff": NAN, "t": NAN, "df": n - 1, "p_t": NAN,
                           "wilcoxon_w": NAN, "p_wilcoxon": NAN, "d_z": NAN, "ci_low": NAN, "ci_high": NAN}
    notes = []
    if n < 2:
        notes.append("fewer than 2 papers: no test")
    else:
        sd = float(diff.std(ddof=1))
        row["sd_diff"] = sd
        if sd > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = stats.ttest_rel(revised, base)
            half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
            row.update(t=float(t.statistic), p_t=float(t.pvalue), d_z=row["mean_diff"] / sd,
                       ci_low=row["mean_diff"] - half, ci_high=row["mean_diff"] + half)
        else:
            notes.append("differences are constant (sd 0): no t-test or d_z")
            row.update(ci_low=row["mean_diff"], ci_high=row["mean_diff"])
        w, pw, note = _wilcoxon(diff)
        row.update(wilcoxon_w=w, p_wilcoxon=pw)
        notes += [note] if note else []
    row.update(bootstrap(diff, n_boot, seed))
    row["note"] = "; ".join(notes)
    return row


def compare(data: Loaded, base: str, revised: str, metrics: list[str], n_boot: int = 10_000,
            seed: int = 0) -> tuple[list[dict[str, Any]], pd.DataFrame, list[str]]:
    """One row per (model, metric), with ``p_t_holm`` (Holm over the metrics of one model); the per-paper
    table (model, metric, paper_id, base, revised, diff); notes on what was skipped."""
    notes: list[str] = []
    versions = set(data.reviews["version"])
    for v in (base, revised):
        if v not in versions:
            raise InputError(f"no pairs: version {v!r} not in the reviews (found: {', '.join(sorted(versions))})")
    rows, per = [], []
    for model in sorted(data.reviews["model"].unique()):
        model_rows = []
        for metric in metrics:
            pp = per_paper(data.reviews[data.reviews["model"] == model], metric)
            if pp.empty:
                notes.append(f"{model}/{metric}: all values null, skipped")
                continue
            both, single = pairs(pp, model, base, revised)
            if single:
                notes.append(f"{model}/{metric}: {single} paper(s) with only one of {base}/{revised} skipped")
            if both.empty:
                notes.append(f"{model}/{metric}: no paper with both versions, skipped")
                continue
            model_rows.append({"model": model, "metric": metric,
                               **paired_test(both["base"].to_numpy(), both["revised"].to_numpy(), n_boot, seed)})
            per.append(both.reset_index().assign(model=model, metric=metric))
        for r, adj in zip(model_rows, holm([r["p_t"] for r in model_rows])):
            r["p_t_holm"] = float(adj)
        rows += model_rows
    if not rows:
        raise InputError(f"no pairs: no paper has both {base} and {revised} with a score")
    cols = ["model", "metric", "paper_id", "base", "revised", "diff"]
    return rows, pd.concat(per, ignore_index=True)[cols], notes
