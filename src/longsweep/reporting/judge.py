"""The report of a judged folder (a ``judgments`` table, written by ``longsweep judge``).

Scores (``scores`` rubrics): per source model, judge model and criterion, the mean and its 95% t
interval over responses, and the same per story turn. The unit is the response: the judge runs of one
response rate the same thing, so they are averaged first (with one run the mean is the plain mean of
the ok rows). Error rows (no valid score) are counted and left out, never read as a value.

Flaws (``flaws`` rubrics): recall = detected / judged flaws per source model, judge model and version
(Wilson 95% interval), and the paired first-vs-revised comparison of ``longsweep compare``
(``analysis.paired.compare``: per-review recall, averaged per paper and version, pairs are papers).

Agreement (``analysis.agreement``): judge runs as raters of each judged unit (a response and criterion,
or a review and flaw), and judge models as raters (their runs averaged): Krippendorff's alpha (ordinal,
interval) over every unit, ICC(2,1) and ICC(3,1) over the complete ones.
"""

from __future__ import annotations

from longsweep.reporting.mpl import plt as _plt, save as _save

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from longsweep.store import Loc

NAN = float("nan")
UNIT = ["source_key", "criterion"]


def _read(root: Loc) -> tuple[pd.DataFrame, list[str]]:
    """Every readable ``judgments/*.parquet`` under ``root`` (itself a judged folder, or its sub-folders)."""
    from longsweep.store import parquet_files, read_file

    dirs = [root / "judgments"] if (root / "judgments").is_dir() else sorted(root.glob("*/judgments"))
    frames, notes = [], []
    for d in dirs:
        for f in parquet_files(d):
            try:
                frames.append(read_file(f).to_pandas())
            except Exception as e:  # noqa: BLE001 - reported and skipped; this command only reads
                notes.append(f"{f.parent.name}/{f.name}: unreadable, skipped ({type(e).__name__})")
    if not frames:
        raise FileNotFoundError(f"{root}: no judgments/*.parquet inside")
    df = pd.concat(frames, ignore_index=True)
    before = len(df)
    df = df.drop_duplicates(subset=["key"], keep="first").reset_index(drop=True)
    if len(df) < before:
        notes.append(f"{before - len(df)} duplicate key(s) across folders, first kept")
    return df, notes


def t_interval(values) -> dict[str, Any]:
    """n, mean, sample sd and the 95% t interval of the mean (pandas' defaults: ddof=1)."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    n = int(x.size)
    out = {"n": n, "mean": float(x.mean()) if n else NAN, "std": float(x.std(ddof=1)) if n > 1 else NAN,
           "ci_low": NAN, "ci_high": NAN}
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * out["std"] / math.sqrt(n)
        out.update(ci_low=out["mean"] - half, ci_high=out["mean"] + half)
    return out


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion k / n."""
    if n == 0:
        return NAN, NAN
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def counts(df: pd.DataFrame) -> dict[str, Any]:
    err = df[df["status"] != "ok"]
    kinds = err["error_kind"].fillna("unknown").value_counts().sort_index()
    return {"rows": int(len(df)), "ok": int(len(df) - len(err)), "error": int(len(err)),
            "errors_by_kind": {str(k): int(v) for k, v in kinds.items()}}


def score_table(df: pd.DataFrame, by: list[str]) -> list[dict[str, Any]]:
    """Mean and 95% CI over responses (runs averaged per response) per group of ``by``."""
    out = []
    for keys, g in df.groupby(by, sort=True, dropna=False):
        ok = g[g["status"] == "ok"]
        per_response = ok.groupby("source_key")["score"].mean()
        out.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,))), "n_rows": int(len(ok)),
                    "n_errors": int(len(g) - len(ok)), **t_interval(per_response.to_numpy())})
    return out


def recall_table(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Pooled recall over the ok flaw judgements per (source model, judge, version)."""
    out = []
    for (sm, judge, version), g in df.groupby(["source_model", "model", "version"], sort=True, dropna=False):
        ok = g[g["status"] == "ok"]
        k, n = int(ok["detected"].astype(bool).sum()), int(len(ok))
        lo, hi = wilson(k, n)
        out.append({"source_model": sm, "judge": judge, "version": version, "n_reviews": int(g["source_key"].nunique()),
                    "n_judgments": n, "n_errors": int(len(g) - n), "detected": k,
                    "recall": k / n if n else NAN, "ci_low": lo, "ci_high": hi})
    return out


def _vkey(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(v)))


def pick_versions(versions) -> tuple[str, str] | None:
    """Base ``v1`` (else the first), revised ``latest`` (else the last other version), natural order."""
    vs = sorted({str(v) for v in versions if v is not None}, key=_vkey)
    if len(vs) < 2:
        return None
    base = "v1" if "v1" in vs else vs[0]
    rest = [v for v in vs if v != base]
    return base, ("latest" if "latest" in rest else rest[-1])


def paired_recall(flaws: pd.DataFrame) -> dict[str, Any] | None:
    """``analysis.paired.compare`` on per-review recall: model = "<source model> / judge <judge>"."""
    from longsweep.analysis.paired import compare
    from longsweep.analysis.tables import Loaded
    from longsweep.errors import InputError

    ok = flaws[flaws["status"] == "ok"]
    versions = pick_versions(ok["version"])
    if versions is None:
        return None
    per = (ok.assign(d=ok["detected"].astype(float))
           .groupby(["source_model", "model", "source_key", "run", "paper_id", "version"], dropna=False)["d"]
           .mean().rename("flaw_recall").reset_index())
    per["model"] = per["source_model"].astype(str) + " / judge " + per["model"].astype(str)
    per["key"] = per["source_key"] + "/run" + per["run"].astype(str)
    base, revised = versions
    try:
        rows, per_paper, notes = compare(Loaded(per, None, []), base, revised, ["flaw_recall"])
    except InputError as e:
        return {"base": base, "revised": revised, "rows": [], "per_paper": [], "notes": [str(e)]}
    return {"base": base, "revised": revised, "rows": rows, "per_paper": per_paper.to_dict("records"), "notes": notes}


def _values(df: pd.DataFrame) -> np.ndarray:
    """The judged value of each row: the score, or 1.0 / 0.0 for a flaw detected or not."""
    detected = df["detected"].astype("float64")
    return np.where(df["rubric_kind"] == "flaws", detected, df["score"].astype("float64"))


def agreement(df: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Judge runs as raters (per judge model and criterion); judge models as raters (per criterion)."""
    from longsweep.analysis.agreement import agreement_row

    ok = df[df["status"] == "ok"].copy()
    if ok.empty:
        return [], []
    ok["value"] = _values(ok)
    ok["crit"] = np.where(ok["rubric_kind"] == "flaws", "detected", ok["criterion"])
    runs, judges = [], []
    for (judge, crit), g in ok.groupby(["model", "crit"], sort=True):
        wide = g.pivot_table(index=UNIT, columns="run", values="value", aggfunc="mean")
        if wide.shape[1] >= 2:
            runs.append({"judge": judge, "criterion": crit, **agreement_row(wide)})
    for crit, g in ok.groupby("crit", sort=True):
        wide = g.pivot_table(index=UNIT, columns="model", values="value", aggfunc="mean")
        if wide.shape[1] >= 2:
            judges.append({"criterion": crit, **agreement_row(wide)})
    return runs, judges


def build_judge_report(results_dir: str | Path | Loc) -> dict[str, Any]:
    """Everything the judged folder says, as tables (lists of row dicts) and notes; no value is NaN
    (a missing one is None), so ``json.dumps`` takes it as it is."""
    from longsweep.analysis.render import clean

    from longsweep.store import loc
    root = loc(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a results folder")
    df, notes = _read(root)
    for c in ("score", "turn", "run", "flaw_index"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    scores, flaws = df[df["rubric_kind"] == "scores"], df[df["rubric_kind"] == "flaws"]
    per = ["source_model", "model", "criterion"]
    rep: dict[str, Any] = {"results_dir": str(root), "counts": counts(df),
                           "rubrics": sorted(df["rubric"].dropna().unique().tolist()),
                           "scores": score_table(scores, per) if len(scores) else [],
                           "scores_per_turn": (score_table(scores[scores["turn"].notna()], per + ["turn"])
                                               if len(scores) else []),
                           "recall": recall_table(flaws) if len(flaws) else [],
                           "paired": paired_recall(flaws) if len(flaws) else None, "notes": notes}
    rep["agreement_runs"], rep["agreement_judges"] = agreement(df)
    for r in rep["scores"] + rep["scores_per_turn"]:
        r["judge"] = r.pop("model")
    return clean(rep)  # plain Python values, NaN as None: JSON-ready


def _f(x: Any, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def _ci(r: dict[str, Any]) -> str:
    return f"{_f(r['mean'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}]"


def format_judge_text(rep: dict[str, Any]) -> str:
    from longsweep.analysis.render import table

    c = rep["counts"]
    kinds = ", ".join(f"{k} {v}" for k, v in c["errors_by_kind"].items()) or "none"
    out = [f"== judgments ({', '.join(rep['rubrics'])}) ==",
           f"rows {c['rows']}  ok {c['ok']}  errors {c['error']} ({kinds})"]
    if rep["scores"]:
        out += ["", "scores: mean [95% CI] over responses (judge runs averaged per response); errors left out"]
        out += table(["source model", "judge", "criterion", "responses", "ok rows", "errors", "mean [95% CI]", "sd"],
                     [[str(r["source_model"]), str(r["judge"]), r["criterion"], str(r["n"]), str(r["n_rows"]),
                       str(r["n_errors"]), _ci(r), _f(r["std"])] for r in rep["scores"]])
    if rep["scores_per_turn"]:
        out += ["", "scores per turn"]
        out += table(["source model", "judge", "criterion", "turn", "responses", "mean [95% CI]"],
                     [[str(r["source_model"]), str(r["judge"]), r["criterion"], str(int(r["turn"])), str(r["n"]),
                       _ci(r)] for r in rep["scores_per_turn"]])
    if rep["recall"]:
        out += ["", "flaw recall: detected / judged flaws (Wilson 95% CI); errors left out"]
        out += table(["source model", "judge", "version", "reviews", "judged", "errors", "detected", "recall [95% CI]"],
                     [[str(r["source_model"]), str(r["judge"]), str(r["version"]), str(r["n_reviews"]),
                       str(r["n_judgments"]), str(r["n_errors"]), str(r["detected"]),
                       f"{_f(r['recall'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}]"] for r in rep["recall"]])
    out += _paired_lines(rep.get("paired"))
    for title, name, first in (("agreement across judge runs", "agreement_runs", ["judge", "criterion"]),
                               ("agreement across judge models (runs averaged)", "agreement_judges", ["criterion"])):
        if rep[name]:
            cols = first + ["n_units", "n_raters", "n_complete", "alpha_ordinal", "alpha_interval", "icc2_1", "icc3_1"]
            out += ["", title] + table(cols, [[_f(r[k]) for k in cols] for r in rep[name]])
    if rep["notes"]:
        out += ["", "notes:"] + [f"  - {n}" for n in rep["notes"]]
    return "\n".join(out)


def _paired_lines(p: dict[str, Any] | None) -> list[str]:
    from longsweep.analysis.render import table

    if not p:
        return []
    out = ["", f"flaw recall paired by paper ({p['revised']} - {p['base']}; runs averaged first)"]
    if p["rows"]:
        out += table(
            ["model", "papers", p["base"], p["revised"], "diff", "95% CI", "p (t)", "p (Wilcoxon)", "d_z"],
            [[r["model"], str(r["n"]), _f(r["mean_base"]), _f(r["mean_revised"]), _f(r["mean_diff"]),
              f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]", _f(r["p_t"], 3), _f(r["p_wilcoxon"], 3), _f(r["d_z"])]
             for r in p["rows"]])
    return out + [f"  - {n}" for n in p["notes"]]




def _mid(rows: list[dict[str, Any]], mid: str) -> np.ndarray:
    """The means as floats: a criterion none of whose answers parsed has no mean (None: not drawn)."""
    return np.array([r[mid] for r in rows], dtype=float)


def _err(rows: list[dict[str, Any]], mid: str) -> np.ndarray:
    m = _mid(rows, mid)
    lo = np.array([r["ci_low"] for r in rows], dtype=float)
    hi = np.array([r["ci_high"] for r in rows], dtype=float)
    return np.vstack([np.nan_to_num(m - lo), np.nan_to_num(hi - m)])


def _scores_plot(rows: list[dict[str, Any]], path: Path, written: list[Path]) -> None:
    """Mean and 95% CI per criterion, one marker series per (source model, judge)."""
    crits = list(dict.fromkeys(r["criterion"] for r in rows))
    groups = list(dict.fromkeys((r["source_model"], r["judge"]) for r in rows))
    fig, ax = _plt().subplots(figsize=(7, 0.5 * len(crits) * max(1, len(groups)) + 1.5))
    for i, g in enumerate(groups):
        rs = [r for r in rows if (r["source_model"], r["judge"]) == g]
        offset = 0.8 * (i - (len(groups) - 1) / 2) / max(len(groups), 1)
        y = np.array([crits.index(r["criterion"]) for r in rs]) + offset
        ax.errorbar(_mid(rs, "mean"), y, xerr=_err(rs, "mean"), fmt="o", capsize=3,
                    label=f"{g[0]} / judge {g[1]}")
    ax.set_yticks(range(len(crits)), crits)
    ax.invert_yaxis()
    ax.set(title="Judge scores: mean and 95% CI over responses", xlabel="score")
    ax.legend(loc="best", fontsize=8)
    _save(fig, path, written)


def _per_turn_plot(rows: list[dict[str, Any]], path: Path, written: list[Path]) -> None:
    crits = list(dict.fromkeys(r["criterion"] for r in rows))
    cols = min(len(crits), 4)
    n_rows = math.ceil(len(crits) / cols)
    fig, axes = _plt().subplots(n_rows, cols, figsize=(3.5 * cols, 3 * n_rows), squeeze=False)
    for ax in axes.flat[len(crits):]:
        ax.set_visible(False)
    for ax, crit in zip(axes.flat, crits):
        for g in dict.fromkeys((r["source_model"], r["judge"]) for r in rows if r["criterion"] == crit):
            rs = sorted((r for r in rows if r["criterion"] == crit and (r["source_model"], r["judge"]) == g),
                        key=lambda r: r["turn"])
            ax.errorbar([r["turn"] for r in rs], _mid(rs, "mean"), yerr=_err(rs, "mean"), fmt="o-", capsize=2,
                        label=f"{g[0]} / {g[1]}")
        ax.set(title=crit, xlabel="turn", ylabel="score")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes.flat[0].legend(fontsize=7)
    _save(fig, path, written)


def _recall_plot(rows: list[dict[str, Any]], path: Path, written: list[Path]) -> None:
    fig, ax = _plt().subplots(figsize=(max(5.0, 1.2 * len(rows) + 2), 4))
    ax.bar(range(len(rows)), [r["recall"] for r in rows], yerr=_err(rows, "recall"), capsize=4)
    ax.set_xticks(range(len(rows)), [f"{r['source_model']}\njudge {r['judge']}\n{r['version']}" for r in rows],
                  fontsize=8)
    ax.set(title="Flaw recall (Wilson 95% CI)", ylabel="detected / judged flaws", ylim=(0, 1.05))
    _save(fig, path, written)


def _agreement_plot(rep: dict[str, Any], path: Path, written: list[Path]) -> None:
    rows = [(f"runs: {r['judge']} / {r['criterion']}", r) for r in rep["agreement_runs"]]
    rows += [(f"judges: {r['criterion']}", r) for r in rep["agreement_judges"]]
    fig, ax = _plt().subplots(figsize=(7, 0.4 * len(rows) + 1.5))
    ax.barh(range(len(rows)), [np.nan_to_num(r["alpha_interval"]) for _, r in rows], color="C2")
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", linewidth=1)
    ax.set(title="Judge agreement: Krippendorff's alpha (interval)", xlabel="alpha", xlim=(-1, 1))
    _save(fig, path, written)


def write_judge_plots(rep: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """PNG plots of the report into ``out_dir`` (created); returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if rep["scores"]:
        _scores_plot(rep["scores"], out / "judge_scores.png", written)
    if rep["scores_per_turn"]:
        _per_turn_plot(rep["scores_per_turn"], out / "judge_scores_per_turn.png", written)
    if rep["recall"]:
        _recall_plot(rep["recall"], out / "flaw_recall.png", written)
    p = rep.get("paired")
    if p and p["per_paper"]:
        from longsweep.analysis.plots import slope_plot
        slope_plot(pd.DataFrame(p["per_paper"]), "flaw_recall", p["base"], p["revised"],
                   out / "flaw_recall_paired.png", written)
    if rep["agreement_runs"] or rep["agreement_judges"]:
        _agreement_plot(rep, out / "judge_agreement.png", written)
    return written
