"""The stories section: counts, length per turn, windowing, speed, and each sequence's turns in order with
their lengths, windowing, tokens/s and the judge's scores per criterion (from a judged folder)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from longsweep.reporting.parts import Raw, capped, details, esc, filter_box, h3, images, pre, section, table
from longsweep.reporting.summary import counts_line, perf_table


def scores_by_source(judgments: list[dict[str, Any]]) -> dict[str, dict[tuple[str, str], list[float]]]:
    """source_key -> (criterion, judge model) -> the ok scores of its judge runs."""
    out: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    for j in judgments:
        if j.get("status") == "ok" and j.get("rubric_kind") == "scores" and j.get("score") is not None:
            out[str(j["source_key"])][(str(j["criterion"]), str(j["model"]))].append(float(j["score"]))
    return out


def _scores(by: dict[tuple[str, str], list[float]] | None) -> Raw:
    if not by:
        return Raw("")
    judges = sorted({j for _, j in by})
    crits = list(dict.fromkeys(c for c, _ in by))
    rows = [[c] + [(sum(v) / len(v) if (v := by.get((c, j))) else None) for j in judges] for c in crits]
    return table(["criterion", *(f"judge {j} (mean over runs)" for j in judges)], rows, cls="scores")


def _turn(r: dict[str, Any], by: dict | None) -> Raw:
    head = (f"turn {esc(r.get('turn'))} ({esc(r.get('prompt_name'))}) &middot; {esc(r['status'])} &middot; "
            f"{esc(r.get('completion_tokens'))} completion tokens, context {esc(r.get('context_tokens'))}, "
            f"windowed: {esc(r.get('turns_dropped'))} turns / {esc(r.get('tokens_dropped'))} tokens dropped, "
            f"{esc(r.get('tokens_per_s'), 1)} tok/s")
    err = (f'<p class="err">{esc(r.get("error_kind"))}: {esc(r.get("error"))}</p>' if r["status"] != "ok" else "")
    prompt = details("prompt", pre(r.get("prompt")), cls="prompt")
    return Raw(f'<div class="turn"><p><b>{head}</b></p>{err}{prompt}{pre(r.get("response"))}'
               f"{_scores(by)}</div>")


def _sequence(name: str, rs: list[dict[str, Any]], scores: dict) -> Raw:
    rs = sorted(rs, key=lambda r: r.get("turn") or 0)
    toks = sum(r.get("completion_tokens") or 0 for r in rs)
    windowed = sum((r.get("turns_dropped") or 0) > 0 or (r.get("tokens_dropped") or 0) > 0 for r in rs)
    errors = sum(r["status"] != "ok" for r in rs)
    judged = sum(str(r.get("key")) in scores for r in rs)
    head = (f"{name} — {len(rs)} turns, {toks} completion tokens, {windowed} windowed, {errors} errors"
            + (f", {judged} judged" if scores else ""))
    return details(head, Raw("".join(_turn(r, scores.get(str(r.get("key")))) for r in rs)))


def items(rows: list[dict[str, Any]], scores: dict, max_items: int) -> Raw:
    seqs: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        seqs[f"{r.get('sequence_id')} / run {r.get('run')} / {r['model']}"].append(r)
    names = sorted(seqs)
    shown, cap = capped(names, max_items, "sequences")
    body = "".join(_sequence(n, seqs[n], scores) for n in shown)
    return Raw(h3(f"Per sequence ({len(names)}): turns in order") + filter_box("story-items", "sequences") + cap
               + f'<div id="story-items">{body}</div>')


def stories_section(st: dict[str, Any], plots: list[Path], judgments: list[dict[str, Any]], max_items: int) -> Raw:
    scores = scores_by_source(judgments)
    parts = [counts_line(st["counts"]),
             h3("Completion length per turn (ok rows)"),
             table(["model", "turn", "n", "mean tokens", "sd"],
                   [[d["model"], d["turn"], d["n"], d["mean"], d["std"]] for d in st["completion_per_turn"].values()]),
             h3("Windowing"), table(["model", "turns", "windowed"],
                                    [[m, w["turns"], w["windowed"]] for m, w in st["windowed"].items()]),
             h3("Speed and retries per model"), perf_table(st["performance"]), images(plots),
             items(st["_rows"], scores, max_items)]
    return section("stories", "Stories", "".join(parts))
