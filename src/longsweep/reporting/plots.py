"""PNG plots of a report (matplotlib, headless): rating by version, truncation rate,
tokens/s over time, completion length per turn. Returns the files written."""

from __future__ import annotations

from longsweep.reporting.mpl import plt as _plt, save as _save

import datetime as _dt
from pathlib import Path
from typing import Any




def _time(s: str | None) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromisoformat(s) if s else None
    except ValueError:
        return None


def _lines(ax, by_model: dict[str, list[tuple]], **style) -> None:
    """One line per model through its (x, y) points, in x order; a legend when there is any."""
    for m, pts in sorted(by_model.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=m, **style)
    if by_model:
        ax.legend()


def _tokens_over_time(rows: list[dict], title: str, path: Path, written: list[Path]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    by_model: dict[str, list[tuple]] = {}
    for r in rows:
        t = _time(r.get("finished_at"))
        if r["status"] == "ok" and t and r.get("tokens_per_s") is not None:
            by_model.setdefault(r["model"], []).append((t, r["tokens_per_s"]))
    _lines(ax, by_model, ms=3)
    ax.set(title=title, xlabel="finished at (UTC)", ylabel="completion tokens/s")
    fig.autofmt_xdate()
    _save(fig, path, written)


def write_plots(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "reviews" in report:
        rv = report["reviews"]
        ok = [r for r in rv["_rows"] if r["status"] == "ok" and r["rating"] is not None]
        versions = sorted({r["version"] for r in ok})
        fig, ax = plt.subplots(figsize=(6, 4))
        if versions:
            ax.boxplot([[r["rating"] for r in ok if r["version"] == v] for v in versions], showmeans=True)
            ax.set_xticks(range(1, len(versions) + 1), versions)
        ax.set(title="Rating by version (ok reviews)", xlabel="version", ylabel="rating (1-10)", ylim=(0.5, 10.5))
        _save(fig, out / "rating_by_version.png", written)

        tr = list(rv["truncation"].values())
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.bar([f"{t['model']}\n{t['version']}" for t in tr], [t["rate"] for t in tr])
        ax.set(title="Truncation rate by model and version", ylabel="share of items truncated", ylim=(0, 1.05))
        _save(fig, out / "truncation_rate.png", written)
        _tokens_over_time(rv["_rows"], "Review tokens/s over time", out / "review_tokens_per_s.png", written)
    if "stories" in report:
        st = report["stories"]
        fig, ax = plt.subplots(figsize=(6, 4))
        by_model: dict[str, list[tuple]] = {}
        for d in st["completion_per_turn"].values():
            by_model.setdefault(d["model"], []).append((d["turn"], d["mean"]))
        _lines(ax, by_model)
        ax.set(title="Completion length per turn (mean)", xlabel="turn", ylabel="completion tokens")
        _save(fig, out / "completion_per_turn.png", written)
        _tokens_over_time(st["_rows"], "Story tokens/s over time", out / "story_tokens_per_s.png", written)
    if "judgments" in report:
        from longsweep.reporting.judge import write_judge_plots
        written += write_judge_plots(report["judgments"], out)
    return written
