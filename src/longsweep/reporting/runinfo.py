"""The run (from each folder's manifest.json), errors by kind with a few examples each, generations, and
the judgments' summary tables."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from longsweep.reporting.parts import (Raw, capped, dict_table, esc, filter_box, h3, images, para, section,
                                       table)
from longsweep.reporting.summary import counts_line, perf_table

EXAMPLES = 3  # error examples shown per (table, kind)


def manifests(root: Path, extra: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable manifest.json of the folder, its sub-folders and the extra (judged) folders."""
    paths = [root / "manifest.json", *sorted(root.glob("*/manifest.json")), *(d / "manifest.json" for d in extra)]
    out = []
    for p in dict.fromkeys(paths):
        try:
            out.append((p.parent, json.loads(p.read_text())))
        except (OSError, ValueError):
            continue
    return out


def _run_row(folder: Path, run: dict[str, Any]) -> list[Any]:
    model = run.get("model_name") or (run.get("model") or {}).get("name")
    c = run.get("counts") or {}
    counts = f"{c.get('rows')} rows, {c.get('ok')} ok, {c.get('error')} errors" if c else "-"
    return [folder.name, run.get("job"), model, run.get("started_at"), run.get("finished_at"),
            (run.get("git_revision") or "-")[:12], counts, run.get("stopped") or run.get("fatal") or "-"]


def run_section(root: Path, extra: list[Path], versions: list[str]) -> Raw:
    found = manifests(root, extra)
    if not found:
        return section("run", "Run", para("No manifest.json found: what ran is not recorded here.", "muted"))
    rows, facts = [], []
    for folder, m in found:
        rows += [_run_row(folder, r) for r in m.get("runs", [])]
        latest = m.get("latest") or {}
        models = sorted({(r.get("model") or {}).get("name") or r.get("model_name") for r in m.get("runs", [])} - {None})
        cfg = (m.get("config") or {})
        opt_versions = (cfg.get("options") or {}).get("versions")
        pk = latest.get("packages") or {}
        facts.append([folder.name, m.get("sweep_id"), m.get("job"), ", ".join(models), opt_versions,
                      (latest.get("git_revision") or "-")[:12], latest.get("python"),
                      ", ".join(f"{k} {v}" for k, v in sorted(pk.items())) if isinstance(pk, dict) else pk])
    body = [table(["folder", "sweep", "job", "models", "versions asked", "git revision", "python", "packages"], facts),
            para(f"Versions in the rows: {', '.join(versions) or 'none'}."),
            h3(f"Runs ({len(rows)}), in the order the manifests record them"),
            table(["folder", "job", "model", "started", "finished", "git", "counts", "stopped / fatal"], rows)]
    return section("run", "Run", "".join(body))


def errors_section(tables: dict[str, list[dict[str, Any]]]) -> Raw:
    """Per table and error kind: the count and the first few rows' keys and messages."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for name, rows in tables.items():
        for r in rows:
            if r.get("status") != "ok":
                groups[(name, str(r.get("error_kind") or "unknown"))].append(r)
    if not groups:
        return section("errors", "Errors", para("No error rows."))
    summary = table(["table", "error kind", "rows"], [[t, k, len(rs)] for (t, k), rs in sorted(groups.items())])
    ex = [h3(f"{t}: {k} ({len(rs)}; first {min(EXAMPLES, len(rs))})")
          + table(["key", "model", "attempts", "error"],
                  [[r.get("key"), r.get("model"), r.get("attempts"), r.get("error")] for r in rs[:EXAMPLES]])
          for (t, k), rs in sorted(groups.items())]
    return section("errors", "Errors by kind", summary + "".join(ex))


def generations_section(g: dict[str, Any], max_items: int) -> Raw:
    rows = sorted(g["_rows"], key=lambda r: (str(r.get("id")), str(r["model"])))
    shown, cap = capped(rows, max_items, "generations")
    body = table(["id", "model", "status", "completion tokens", "tok/s", "text / error"],
                 [[r.get("id"), r["model"], r["status"], r.get("completion_tokens"), r.get("tokens_per_s"),
                   r.get("text") if r["status"] == "ok" else f"{r.get('error_kind')}: {r.get('error')}"]
                  for r in shown], cls="rows")
    return section("generations", "Generations", counts_line(g["counts"]) + perf_table(g["performance"])
                   + filter_box("gen-items", "generations") + cap + f'<div id="gen-items">{body}</div>')


def judgments_section(rep: dict[str, Any], plots: list[Path], rows: list[dict[str, Any]], max_items: int) -> Raw:
    """The judged folder's tables (``reporting.judge``) and its rows, filterable."""
    parts = [para(f"Rubrics: {', '.join(rep['rubrics']) or '-'}"), counts_line(rep["counts"])]
    for name, title, cols in (
            ("scores", "Scores: mean [95% CI] over responses", ["source_model", "judge", "criterion", "n", "n_rows",
                                                                  "n_errors", "mean", "ci_low", "ci_high", "std"]),
            ("recall", "Flaw recall (Wilson 95% CI)", ["source_model", "judge", "version", "n_reviews",
                                                        "n_judgments", "detected", "recall", "ci_low", "ci_high"]),
            ("agreement_runs", "Agreement across judge runs", ["judge", "criterion", "n_units", "alpha_ordinal",
                                                                "alpha_interval", "icc2_1", "icc3_1"]),
            ("agreement_judges", "Agreement across judge models", ["criterion", "n_units", "n_raters",
                                                                    "alpha_interval", "icc2_1", "icc3_1"])):
        if rep.get(name):
            parts += [h3(title), dict_table(rep[name], cols)]
    parts += [images(plots)] + [para(n, "muted") for n in rep.get("notes") or []]
    shown, cap = capped(sorted(rows, key=lambda r: str(r.get("key"))), max_items, "judgments")
    cols = ["source_key", "model", "run", "criterion", "flaw", "score", "detected", "status", "reasoning", "evidence"]
    parts += [h3(f"Judgments ({len(rows)})"), filter_box("judge-items", "judgments"), cap,
              Raw(f'<div id="judge-items">{dict_table(shown, cols, cls="rows")}</div>')]
    return section("judgments", "Judgments", "".join(parts))
