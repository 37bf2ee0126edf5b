"""The reviews section: counts, truncation, scores by version, the paired comparison, and per paper the
versions' reviews side by side with their scores, truncation stages and parse issues."""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from longsweep.reporting.parts import (Raw, capped, details, dict_table, esc, filter_box, h3, images, para, pre,
                                       section, table)
from longsweep.reporting.summary import counts_line, perf_table, score_groups

SHOWN_SCORES = ("rating", "soundness", "presentation", "contribution", "confidence")


def _vkey(v: Any) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(v)))


def summary(rv: dict[str, Any], plots: list[Path], compare: Raw) -> Raw:
    from longsweep.reporting.tables import SCORES
    parts = [counts_line(rv["counts"]), h3("Truncation by model and version"),
             table(["model", "version", "items", "truncated", "rate"],
                   [[t["model"], t["version"], t["n"], t["truncated"], t["rate"]] for t in rv["truncation"].values()]),
             h3("Scores by version (ok reviews: mean ± sd (n))"), score_groups(rv["scores_by_version"], SCORES),
             h3("Scores, truncated vs not"), score_groups(rv["scores_by_truncation"], SCORES),
             h3("Decisions by version"),
             table(["version", "decisions"], [[v, ", ".join(f"{k} {n}" for k, n in sorted(d.items()))]
                                              for v, d in rv["decisions_by_version"].items()]),
             h3("Speed and retries per model"), perf_table(rv["performance"]), images(plots), compare]
    return Raw("".join(parts))


def compare_part(root: Path, rows: list[dict], plot_dir: Path) -> Raw:
    """``longsweep compare``'s paired tables and plots for the first and last version, when there are two;
    a note when the comparison has nothing to say (one paper, one version)."""
    versions = sorted({str(r["version"]) for r in rows if r["status"] == "ok" and r["version"] is not None},
                      key=_vkey)
    if len(versions) < 2:
        return Raw("")
    from longsweep.analysis import METRICS
    from longsweep.analysis.command import build
    from longsweep.errors import InputError
    base = "v1" if "v1" in versions else versions[0]
    revised = "latest" if "latest" in versions else versions[-1]
    args = argparse.Namespace(results=[str(root)], base=base, revised=revised, metrics=list(METRICS),
                              human=None, human_version=None, bootstrap=1000, seed=0)
    try:
        res = build(args)
    except InputError as e:
        return Raw(h3(f"Paired comparison {revised} - {base}") + para(f"not computed: {e}", "muted"))
    import pandas as pd
    from longsweep.analysis.plots import effect_sizes, slope_plot
    from longsweep.analysis.render import COLUMNS
    per = pd.DataFrame(res["per_paper"], columns=COLUMNS["per_paper"])
    written: list[Path] = []  # two of compare's plots: the rating per paper, and every effect size
    plot_dir.mkdir(parents=True, exist_ok=True)
    if (per["metric"] == "rating").any():
        slope_plot(per, "rating", base, revised, plot_dir / "slope_rating.png", written)
    if res["paired"]:
        effect_sizes(res["paired"], plot_dir / "effect_sizes.png", written)
    cols = [c for c in COLUMNS["paired"] if c not in ("boot_low", "boot_high", "dz_boot_low", "dz_boot_high")]
    out = [h3(f"Paired comparison by paper: {revised} - {base} (runs averaged first; 1,000 bootstrap resamples)"),
           dict_table(res["paired"], cols)]
    for name, title in (("consistency", "Run-to-run consistency"), ("agreement_models", "Agreement between models")):
        if res.get(name):
            out += [h3(title), dict_table(res[name], COLUMNS[name])]
    out += [images(written)] + [para(n, "muted") for n in res["notes"]]
    return Raw("".join(out))


def _review_block(r: dict[str, Any]) -> Raw:
    scores = ", ".join(f"{s} {esc(r.get(s))}" for s in SHOWN_SCORES if r.get(s) is not None) or "no scores"
    head = f"run {esc(r.get('run'))} &middot; {esc(r['model'])} &middot; {esc(r['status'])}"
    lines = [f"<p><b>{head}</b><br>{scores}; decision {esc(r.get('decision'))}</p>",
             f"<p>tokens {esc(r.get('tokens_full'))} &rarr; {esc(r.get('tokens_fitted'))} (budget "
             f"{esc(r.get('budget_tokens'))}); truncated {esc(bool(r.get('was_truncated')))}; stages "
             f"{esc(r.get('truncation_stages') or [])}; {esc(r.get('completion_tokens'))} completion tokens at "
             f"{esc(r.get('tokens_per_s'), 1)} tok/s</p>"]
    if r.get("parse_issues"):
        lines.append(f'<p class="err">parse issues: {esc(r["parse_issues"])}</p>')
    if r["status"] != "ok":
        lines.append(f'<p class="err">{esc(r.get("error_kind"))}: {esc(r.get("error"))}</p>')
    if r.get("raw_content"):
        lines.append(pre(r["raw_content"]))
    return Raw("".join(lines))


def _paper(pid: str, rs: list[dict[str, Any]]) -> Raw:
    by_v: dict[str, list[dict]] = defaultdict(list)
    for r in rs:
        by_v[str(r["version"])].append(r)
    cols, heads = [], []
    for v in sorted(by_v, key=_vkey):
        vr = sorted(by_v[v], key=lambda r: (str(r["model"]), r.get("run") or 0))
        ratings = [r["rating"] for r in vr if r["status"] == "ok" and r.get("rating") is not None]
        mean = sum(ratings) / len(ratings) if ratings else None
        trunc = sum(bool(r.get("was_truncated")) for r in vr)
        heads.append(f"{v}: rating {esc(mean, 1)} over {len(ratings)}, {trunc}/{len(vr)} truncated")
        blocks = "<hr>".join(_review_block(r) for r in vr)
        cols.append(f"<div><h4>{esc(v)}</h4>{blocks}</div>")
    summary_text = f"{pid} — " + "; ".join(heads)
    return details(summary_text, Raw(f'<div class="side">{"".join(cols)}</div>'))


def items(rows: list[dict[str, Any]], max_items: int) -> Raw:
    by_paper: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_paper[str(r["paper_id"])].append(r)
    papers = sorted(by_paper)
    shown, cap = capped(papers, max_items, "papers")
    body = "".join(_paper(p, by_paper[p]) for p in shown)
    return Raw(h3(f"Per paper ({len(papers)}): the versions' reviews side by side")
               + filter_box("review-items", "papers") + cap + f'<div id="review-items">{body}</div>')


def reviews_section(root: Path, rv: dict[str, Any], plots: list[Path], plot_dir: Path, max_items: int) -> Raw:
    rows = rv["_rows"]
    return section("reviews", "Reviews", summary(rv, plots, compare_part(root, rows, plot_dir))
                   + items(rows, max_items))
