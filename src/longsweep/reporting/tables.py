"""``longsweep report RESULTS_DIR``: what a sweep found, at a glance.

Reviews: counts (ok / error by kind), truncation rate by model and version, mean
and spread of the rating and sub-scores by version and by truncated vs not (the
review seed's analysis), tokens/s and latency percentiles per model, retries and
resets. Stories: tokens/s per model, completion length per turn, turns windowed,
retries. Statistics follow pandas' defaults (sample std, ddof=1; linear
percentiles) so a user's own notebook gives the same numbers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable

from longsweep.errors import InputError
from longsweep.store import loc, read_table

SCORES = ("rating", "soundness", "presentation", "contribution", "confidence")
PERCENTILES = (0.5, 0.9, 0.99)
_PERF = ("tokens_per_s", "latency_s", "attempts", "resets", "error_kind", "key", "backend", "prompt_tokens",
         "cached_tokens")
# per table: the columns a row must have to be one of its rows, then those the report reads when present
NEEDED = {"reviews": ("status", "model", "paper_id", "version"), "stories": ("status", "model", "turn"),
          "generations": ("status", "model")}
OPTIONAL = {"reviews": ("was_truncated", "decision", *SCORES, *_PERF),
            "stories": ("completion_tokens", "turns_dropped", "tokens_dropped", *_PERF), "generations": _PERF}


def table_rows(table: str, dirs: list[Path], tables: list) -> list[dict]:
    """The rows of one kind of table; raises ``InputError`` (one line) when they lack what makes them that
    kind's rows (a ``reviews/`` folder of generation rows); columns of later versions default to None."""
    for d, t in zip(dirs, tables):
        missing = [c for c in NEEDED[table] if c not in t.column_names]
        if missing:
            kind = {"reviews": "review", "stories": "story", "generations": "generation"}[table]
            raise InputError(f"{d}: not {kind} rows (no column {', '.join(missing)}); nothing to report")
    blank = dict.fromkeys(OPTIONAL[table])
    return [{**blank, **r} for t in tables for r in t.to_pylist()]


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy/pandas default)."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def describe(values: Iterable[float | None]) -> dict[str, Any]:
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    n = len(xs)
    mean = sum(xs) / n if n else None
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return {"n": n, "mean": mean, "std": std}


def percentiles(values: Iterable[float | None]) -> dict[str, Any]:
    xs = [float(v) for v in values if v is not None]
    return {"n": len(xs), "mean": sum(xs) / len(xs) if xs else None,
            **{f"p{int(q * 100)}": quantile(xs, q) for q in PERCENTILES}}


def _group(rows: list[dict], key: Callable[[dict], Any]) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = defaultdict(list)
    for r in rows:
        out[key(r)].append(r)
    return dict(sorted(out.items(), key=lambda kv: str(kv[0])))


def counts(rows: list[dict]) -> dict[str, Any]:
    ok = sum(r["status"] == "ok" for r in rows)
    kinds = Counter(r.get("error_kind") or "unknown" for r in rows if r["status"] != "ok")
    return {"rows": len(rows), "ok": ok, "error": len(rows) - ok, "errors_by_kind": dict(sorted(kinds.items()))}


def performance(rows: list[dict]) -> dict[str, Any]:
    """Per model: tokens/s and latency percentiles over ok rows; retries and resets over all rows."""
    out = {}
    for model, rs in _group(rows, lambda r: r["model"]).items():
        ok = [r for r in rs if r["status"] == "ok"]
        out[model] = {
            "tokens_per_s": percentiles(r["tokens_per_s"] for r in ok),
            "latency_s": percentiles(r["latency_s"] for r in ok),
            "retried_items": sum((r["attempts"] or 0) > 1 for r in rs),
            "retries": sum(max(0, (r["attempts"] or 0) - 1) for r in rs),
            "resets": sum(r["resets"] or 0 for r in rs),
        }
    return out


def add_engine_counts(perf: dict[str, Any], rows: list[dict], sweep_dirs: list, *, ideal: bool = True) -> None:
    """Per model: the prefix-cache hit rate against its ideal (``kvfit.prefix_hit``; None where the engine
    reported no cached tokens; no ideal for story turns, whose prompts grow from the turn before) and the
    engine's own counts its workers recorded (vLLM: preemptions)."""
    from longsweep.kvfit import prefix_hit
    from longsweep.runtime import engine_stats
    for model, p in perf.items():
        found = [e for e in (engine_stats.read(d, model) for d in sweep_dirs) if e]
        pre = [e["preemptions"] for e in found if e.get("preemptions") is not None]
        sizes = [e["block_size"] for e in found if e.get("block_size")]
        p["engine"] = {"workers": sum(e["workers"] for e in found), "preemptions": sum(pre) if pre else None,
                       "block_size": max(sizes) if sizes else None} if found else None
        hit = prefix_hit([r for r in rows if r["model"] == model], max(sizes) if sizes else None)
        p["prefix_cache"] = ({**hit.as_dict(), **({} if ideal else {"ideal": None})}) if hit else None


def review_report(rows: list[dict]) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == "ok"]
    trunc = {}
    for (model, version), rs in _group(rows, lambda r: (r["model"], r["version"])).items():
        n_t = sum(bool(r["was_truncated"]) for r in rs)
        trunc[f"{model}/{version}"] = {"model": model, "version": version, "n": len(rs), "truncated": n_t,
                                       "rate": n_t / len(rs)}
    by_version = {v: {s: describe(r[s] for r in rs) for s in SCORES}
                  for v, rs in _group(ok, lambda r: r["version"]).items()}
    by_trunc = {("truncated" if t else "not_truncated"): {s: describe(r[s] for r in rs) for s in SCORES}
                for t, rs in _group(ok, lambda r: bool(r["was_truncated"])).items()}
    decisions = {v: dict(Counter(r["decision"] or "none" for r in rs))
                 for v, rs in _group(ok, lambda r: r["version"]).items()}
    return {"counts": counts(rows), "truncation": trunc, "scores_by_version": by_version,
            "scores_by_truncation": by_trunc, "decisions_by_version": decisions, "performance": performance(rows)}


def story_report(rows: list[dict]) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == "ok"]
    per_turn = {}
    for (model, turn), rs in _group(ok, lambda r: (r["model"], r["turn"])).items():
        per_turn[f"{model}/turn{turn}"] = {"model": model, "turn": turn,
                                           **describe(r["completion_tokens"] for r in rs)}
    windowed = {m: {"turns": len(rs), "windowed": sum((r["turns_dropped"] or 0) > 0 or (r["tokens_dropped"] or 0) > 0
                                                      for r in rs)}
                for m, rs in _group(ok, lambda r: r["model"]).items()}
    return {"counts": counts(rows), "completion_per_turn": per_turn, "windowed": windowed,
            "performance": performance(rows)}


def build_report(results_dir: str | Path) -> dict[str, Any]:
    """Every table found in a sweep folder (or in a folder of sweep folders)."""
    root = loc(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a results folder")
    out: dict[str, Any] = {"results_dir": str(root)}
    for table, fn in (("reviews", review_report), ("stories", story_report), ("generations", None)):
        dirs = [root / table] if (root / table).is_dir() else sorted(p for p in root.glob(f"*/{table}") if p.is_dir())
        found = [(d, t) for d, t in ((d, read_table(d)) for d in dirs) if t is not None]
        if not found:
            continue
        rows = table_rows(table, [d for d, _ in found], [t for _, t in found])
        out[table] = fn(rows) if fn else {"counts": counts(rows), "performance": performance(rows)}
        add_engine_counts(out[table]["performance"], rows, [d.parent for d, _ in found], ideal=table != "stories")
        out[table]["_rows"] = rows
    if (root / "judgments").is_dir() or any(root.glob("*/judgments")):
        from longsweep.reporting.judge import build_judge_report
        out["judgments"] = build_judge_report(root)
    if not any(t in out for t in ("reviews", "stories", "generations", "judgments")):
        raise FileNotFoundError(f"{root}: no reviews/, stories/, generations/ or judgments/ results inside")
    return out


def public(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the raw rows (for --json)."""
    return {k: ({kk: vv for kk, vv in v.items() if kk != "_rows"} if isinstance(v, dict) else v)
            for k, v in report.items()}


def _f(x: Any, nd: int = 2) -> str:
    return "-" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header] + [[_f(c) for c in r] for r in rows]
    w = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(r))  # noqa: E731
    return [fmt(cells[0]), fmt(["-" * x for x in w])] + [fmt(r) for r in cells[1:]]


def _counts_lines(c: dict[str, Any]) -> list[str]:
    kinds = ", ".join(f"{k} {v}" for k, v in c["errors_by_kind"].items()) or "none"
    return [f"rows {c['rows']}  ok {c['ok']}  errors {c['error']} ({kinds})"]


def _kv_cells(p: dict[str, Any]) -> list[str]:
    """Prefix-cache hit / ideal and preemptions, "n/a" where the engine did not report them."""
    pc, eng = p.get("prefix_cache"), p.get("engine") or {}
    na = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    pre = eng.get("preemptions")
    return [na(pc and pc["rate"]), na(pc and pc["ideal"]), "n/a" if pre is None else str(pre)]


def _perf_lines(perf: dict[str, Any]) -> list[str]:
    rows = [[m, p["tokens_per_s"]["mean"], p["tokens_per_s"]["p50"], p["latency_s"]["p50"], p["latency_s"]["p90"],
             p["latency_s"]["p99"], p["retries"], p["resets"], *_kv_cells(p)] for m, p in perf.items()]
    return _table(["model", "tok/s mean", "tok/s p50", "lat p50 s", "lat p90 s", "lat p99 s", "retries", "resets",
                   "prefix hit", "ideal", "preempted"], rows)


def format_text(report: dict[str, Any]) -> str:
    out = [f"report: {report['results_dir']}"]
    if "reviews" in report:
        rv = report["reviews"]
        out += ["", "== reviews =="] + _counts_lines(rv["counts"]) + [""]
        out += _table(["model/version", "items", "truncated", "rate"],
                      [[k, t["n"], t["truncated"], t["rate"]] for k, t in rv["truncation"].items()])
        for title, groups in (("by version", rv["scores_by_version"]), ("truncated vs not", rv["scores_by_truncation"])):
            out += ["", f"scores {title} (mean ± std, n)"]
            out += _table(["group"] + list(SCORES), [
                [g] + [f"{_f(d[s]['mean'])} ± {_f(d[s]['std'])} ({d[s]['n']})" for s in SCORES]
                for g, d in groups.items()])
        out += [""] + _perf_lines(rv["performance"])
    if "stories" in report:
        st = report["stories"]
        out += ["", "== stories =="] + _counts_lines(st["counts"]) + [""]
        out += _table(["model/turn", "n", "completion tokens mean", "std"],
                      [[k, d["n"], d["mean"], d["std"]] for k, d in st["completion_per_turn"].items()])
        out += [""] + _table(["model", "turns", "windowed"], [[m, w["turns"], w["windowed"]]
                                                             for m, w in st["windowed"].items()])
        out += [""] + _perf_lines(st["performance"])
    if "generations" in report:
        g = report["generations"]
        out += ["", "== generations =="] + _counts_lines(g["counts"]) + [""] + _perf_lines(g["performance"])
    if "judgments" in report:
        from longsweep.reporting.judge import format_judge_text
        out += ["", format_judge_text(report["judgments"])]
    return "\n".join(out)
