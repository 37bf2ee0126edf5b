"""A comparison result as terminal tables, one JSON document, or one CSV per table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TABLES = ("paired", "consistency", "agreement_models", "agreement_reviewers", "human", "per_paper")

COLUMNS = {
    "paired": ["model", "metric", "n", "mean_base", "mean_revised", "mean_diff", "sd_diff", "ci_low", "ci_high",
               "boot_low", "boot_high", "t", "df", "p_t", "p_t_holm", "wilcoxon_w", "p_wilcoxon", "d_z",
               "dz_boot_low", "dz_boot_high", "note"],
    "consistency": ["model", "metric", "n_cells", "runs_per_cell", "mean_within_sd", "icc1"],
    "agreement_models": ["metric", "n_units", "n_raters", "n_complete", "alpha_ordinal", "alpha_interval",
                         "icc2_1", "icc3_1"],
    "agreement_reviewers": ["model", "metric", "n_units", "n_raters", "n_complete", "alpha_ordinal",
                            "alpha_interval", "icc2_1", "icc3_1"],
    "human": ["model", "metric", "version", "n", "mse", "mae", "rmse", "bias", "pearson_r", "pearson_p",
              "spearman_rho", "spearman_p", "note"],
    "per_paper": ["model", "metric", "paper_id", "base", "revised", "diff"],
}


def clean(x: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(clean(result), indent=2)


def write_csv(result: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """One CSV per non-empty table, columns in the documented order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLES:
        rows = result.get(name) or []
        if rows:
            path = out / f"{name}.csv"
            pd.DataFrame(rows).reindex(columns=COLUMNS[name]).to_csv(path, index=False)
            written.append(path)
    return written


def _f(x: Any, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _p(x: Any) -> str:
    return "-" if x is None or not math.isfinite(x) else ("<0.001" if x < 0.001 else f"{x:.3f}")


def _ci(lo: Any, hi: Any) -> str:
    return f"[{_f(lo)}, {_f(hi)}]"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    cells = [header] + rows
    w = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(r))  # noqa: E731
    return [fmt(header), fmt(["-" * x for x in w])] + [fmt(r) for r in rows]


def _paired_lines(result: dict[str, Any]) -> list[str]:
    b, r = result["base"], result["revised"]
    rows = [[x["model"], x["metric"], str(x["n"]), _f(x["mean_base"]), _f(x["mean_revised"]), f"{x['mean_diff']:+.2f}",
             _ci(x["ci_low"], x["ci_high"]), _ci(x["boot_low"], x["boot_high"]),
             f"{_f(x['t'])} ({x['df']})", _p(x["p_t"]), _p(x["p_t_holm"]), _p(x["p_wilcoxon"]), _f(x["d_z"])]
            for x in result["paired"]]
    head = ["model", "metric", "papers", b, r, "diff", "95% CI t", "95% CI boot", "t (df)", "p", "p Holm",
            "p Wilcoxon", "d_z"]
    return [f"paired by paper, runs averaged first: {r} - {b}"] + table(head, rows)


def _simple(title: str, name: str, result: dict[str, Any], pcols: tuple[str, ...] = ()) -> list[str]:
    rows = result.get(name) or []
    if not rows:
        return []
    cols = [c for c in COLUMNS[name] if c not in ("note", "version")]
    body = [[(_p(x[c]) if c in pcols else _f(x[c])) for c in cols] for x in rows]
    return ["", title] + table(cols, body)


def format_text(result: dict[str, Any]) -> str:
    out = [f"compare: {', '.join(result['inputs'])}", ""] + _paired_lines(result)
    out += _simple("run-to-run consistency (sd across runs within paper x version; ICC(1), runs as raters)",
                   "consistency", result)
    out += _simple("agreement between models (units: paper x version, runs averaged)", "agreement_models", result)
    out += _simple("agreement between a model's reviewers (units: paper x version x run)",
                   "agreement_reviewers", result)
    if result.get("human"):
        out += _simple(f"AI vs human (AI at version {result['human_version']}, runs averaged)", "human", result,
                       ("pearson_p", "spearman_p"))
    notes = result.get("notes") or []
    if notes:
        out += ["", f"notes ({len(notes)}):"] + [f"  - {n}" for n in notes]
    return "\n".join(out)
