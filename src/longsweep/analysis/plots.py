"""PNG plots of a comparison (matplotlib, Agg backend): a paired slope plot and a histogram of the
per-paper differences per metric (one panel per model), and d_z with its bootstrap CI per model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _panels(n: int, width: float = 4.0, height: float = 3.5):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = _plt().subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _save(fig, path: Path, written: list[Path]) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    written.append(path)


def slope_plot(per: pd.DataFrame, metric: str, base: str, revised: str, path: Path, written: list[Path]) -> None:
    d = per[per["metric"] == metric]
    models = sorted(d["model"].unique())
    fig, axes = _panels(len(models))
    for ax, model in zip(axes, models):
        dm = d[d["model"] == model]
        for b, r in zip(dm["base"], dm["revised"]):
            ax.plot([0, 1], [b, r], "-o", color="0.6", alpha=0.5, markersize=3)
        ax.plot([0, 1], [dm["base"].mean(), dm["revised"].mean()], "-o", color="C3", linewidth=2.5, label="mean")
        ax.set_xticks([0, 1], [base, revised])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(f"{model} (n={len(dm)})")
        ax.set_ylabel(metric)
        ax.legend(loc="best")
    fig.suptitle(f"{metric}: per paper, runs averaged")
    _save(fig, path, written)


def diff_histogram(per: pd.DataFrame, metric: str, base: str, revised: str, path: Path, written: list[Path]) -> None:
    d = per[per["metric"] == metric]
    models = sorted(d["model"].unique())
    fig, axes = _panels(len(models))
    for ax, model in zip(axes, models):
        diff = d.loc[d["model"] == model, "diff"].to_numpy()
        ax.hist(diff, bins=min(20, max(5, diff.size // 2)), color="C0", alpha=0.8)
        ax.axvline(0, color="k", linewidth=1)
        ax.axvline(float(np.mean(diff)), color="C3", linestyle="--", label=f"mean {np.mean(diff):+.2f}")
        ax.set_title(f"{model} (n={diff.size})")
        ax.set_xlabel(f"{revised} - {base}")
        ax.set_ylabel("papers")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="best")
    fig.suptitle(f"{metric}: per-paper difference")
    _save(fig, path, written)


def effect_sizes(rows: list[dict[str, Any]], path: Path, written: list[Path]) -> None:
    rows = [r for r in rows if np.isfinite(r["d_z"])]
    if not rows:
        return
    fig, ax = _plt().subplots(figsize=(7, 0.45 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    dz = np.array([r["d_z"] for r in rows])
    lo = np.array([r["dz_boot_low"] for r in rows])
    hi = np.array([r["dz_boot_high"] for r in rows])
    err = np.vstack([np.nan_to_num(dz - lo), np.nan_to_num(hi - dz)])
    ax.errorbar(dz, y, xerr=err, fmt="o", color="C0", capsize=3)
    ax.axvline(0, color="k", linewidth=1)
    ax.set_yticks(y, [f"{r['model']} / {r['metric']}" for r in rows])
    ax.set_xlabel("Cohen's d_z (revised - base), 95% bootstrap CI")
    _save(fig, path, written)


def write_plots(rows: list[dict[str, Any]], per: pd.DataFrame, base: str, revised: str,
                out_dir: str | Path) -> list[Path]:
    """Every plot into ``out_dir`` (created); returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for metric in dict.fromkeys(per["metric"]):
        slope_plot(per, metric, base, revised, out / f"slope_{metric}.png", written)
        diff_histogram(per, metric, base, revised, out / f"diff_hist_{metric}.png", written)
    effect_sizes(rows, out / "effect_sizes.png", written)
    return written
