"""Summary tables shared by the page's sections: counts, speed per model, score groups."""

from __future__ import annotations

from typing import Any

from longsweep.reporting.parts import Raw, esc, table


def counts_line(c: dict[str, Any]) -> Raw:
    kinds = ", ".join(f"{k} {v}" for k, v in c["errors_by_kind"].items()) or "none"
    return Raw(f"<p>rows <b>{esc(c['rows'])}</b> &middot; ok <b>{esc(c['ok'])}</b> &middot; errors "
               f"<b>{esc(c['error'])}</b> ({esc(kinds)})</p>")


def perf_table(perf: dict[str, Any]) -> Raw:
    rows = [[m, p["tokens_per_s"]["mean"], p["tokens_per_s"]["p50"], p["latency_s"]["p50"], p["latency_s"]["p90"],
             p["latency_s"]["p99"], p["retries"], p["resets"]] for m, p in perf.items()]
    return table(["model", "tok/s mean", "tok/s p50", "latency p50 s", "p90 s", "p99 s", "retries", "resets"], rows)


def score_groups(groups: dict[str, dict[str, Any]], scores: tuple[str, ...]) -> Raw:
    """Mean ± sd (n) per group and score."""
    def cell(d: dict[str, Any]) -> str:
        return Raw(f"{esc(d['mean'])} ± {esc(d['std'])} ({esc(d['n'])})")
    return table(["group", *scores], ([g] + [cell(d[s]) for s in scores] for g, d in groups.items()))
