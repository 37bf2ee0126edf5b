"""The sweep's summary per model: prefix-cache hit rate against its ideal, and the workers' preemptions."""

import pyarrow as pa

from longsweep.results import COMMON, to_table
from longsweep.runtime import engine_stats
from longsweep.runtime.sweep import summarize
from longsweep.store import loc, publish_table


def _rows(model, backend, cached):
    return [{"key": f"p1/v1/run{k}/{model}", "model": model, "backend": backend, "status": "ok",
             "prompt_tokens": 300, "cached_tokens": c, "completion_tokens": 10, "finished_at": "2026-01-01"}
            for k, c in enumerate(cached, 1)]


def test_summary_has_the_hit_rate_its_ideal_and_preemptions(tmp_path):
    table = loc(tmp_path) / "reviews"
    rows = _rows("a", "vllm", [0, 256, 256]) + _rows("b", "llama_cpp", [None, None, None])
    publish_table(table, to_table(rows, pa.schema(COMMON)), prefix="t")
    engine_stats.record(tmp_path, "a", "host:1", {"block_size": 128, "preemptions": 3})
    engine_stats.record(tmp_path, "a", "host:2", {"block_size": 128, "preemptions": 1})
    engine_stats.record(tmp_path, "a", "host:3", {})  # nothing counted: no file
    s = summarize(table, total=3, skipped=0, ran=3, wall_s=1.0, since="2026", model="a")
    assert s.prefix_cache["rate"] == 512 / 900 and s.prefix_cache["ideal"] == 512 / 900
    assert s.engine == {"workers": 2, "preemptions": 4, "block_size": 128}
    text = "\n".join(s.lines())
    assert "prefix cache: 0.569 of prompt tokens cached, ideal 0.569 (3 rows of 1 prompts, 128-token blocks)" in text
    assert "engine: 4 preemption(s)" in text
    b = summarize(table, total=3, skipped=0, ran=3, wall_s=1.0, since="2026", model="b")
    assert b.prefix_cache is None and b.engine is None
    lines = b.lines()
    assert "prefix cache: n/a (the engine reported no cached tokens)" in lines
    assert not any(x.startswith("engine:") for x in lines)


def test_report_shows_hit_ideal_and_preemptions_or_na(tmp_path):
    from longsweep.reporting.tables import build_report, format_text, public
    rows = _rows("a", "vllm", [0, 256, 256]) + _rows("b", "llama_cpp", [None, None, None])
    publish_table(loc(tmp_path) / "generations", to_table(rows, pa.schema(COMMON)), prefix="t")
    engine_stats.record(tmp_path, "a", "host:1", {"block_size": 128, "preemptions": 2})
    rep = build_report(tmp_path)
    perf = public(rep)["generations"]["performance"]
    assert perf["a"]["prefix_cache"]["ideal"] == 512 / 900 and perf["a"]["engine"]["preemptions"] == 2
    assert perf["b"]["prefix_cache"] is None and perf["b"]["engine"] is None
    lines = format_text(rep).splitlines()
    head = next(x for x in lines if x.startswith("model "))
    assert head.split()[-3:] == ["hit", "ideal", "preempted"]
    assert next(x for x in lines if x.startswith("a ")).split()[-3:] == ["0.569", "0.569", "2"]
    assert next(x for x in lines if x.startswith("b ")).split()[-3:] == ["n/a", "n/a", "n/a"]
