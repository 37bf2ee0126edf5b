"""Overhead: the whole review sweep (ingest excluded) vs a bare loop over the same engine.

Both sides get the same fitted review prompts (sample papers, v1 and v2), the same
sampling (greedy, JSON-schema constrained), the same threads (one actor with all
CPUs vs one in-process engine with the same n_threads) and no retries. The bare loop
loads the engine and calls ``engine.generate`` on the prompts; the sweep runs
``run_sweep`` on a fresh local Ray (plan, actor start, model load, retries off,
parse, Parquet) on the embedded Ray a workstation run gets. Ratio = sweep throughput /
bare throughput in completion tokens/s, end to end (load included on both sides). The
sweep's time is also split into engine time (generate calls, from the rows) and the rest.

    python bench/overhead.py                              # llama.cpp (main venv)
    .venv-vllm/bin/python bench/overhead.py --model smollm2-135m-vllm
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import model_spec, write  # sets sys.path

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.engines.base import GenerationRequest
from longsweep.engines.registry import load_engine
from longsweep.jobs.review.driver import prepare_all, review_items
from longsweep.jobs.review.options import ReviewOptions
from longsweep.papers.formats import format_for_model
from longsweep.papers.layout import discover
from longsweep.papers.samples import make_samples


def _spec(name: str, window: int, threads: int) -> ModelSpec:
    d = model_spec(name, window).model_dump()
    d["resources"]["num_cpus"] = threads
    if d["backend"] == "llama_cpp":
        d["llama_cpp"]["n_threads"] = threads
    return ModelSpec.model_validate(d)


def review_options(max_tokens: int) -> ReviewOptions:
    return ReviewOptions(runs=1, temperature=0.0, completion_reserve=max_tokens, repetition_penalty=1.3)


def review_requests(spec: ModelSpec, folder: Path, n_papers: int, max_tokens: int):
    """The fitted review items of ``n_papers`` sample papers (v1, v2) and their greedy JSON requests, built
    as the review task builds them (jobs/review/task.py)."""
    opts = review_options(max_tokens)
    prepared = prepare_all(discover(make_samples(folder, n_papers=n_papers)), spec, opts, use_ray=False)
    items, errors = review_items(prepared, spec, opts, "bench")
    assert not errors, errors
    schema = format_for_model(spec.name, opts.format or spec.prompt_family).json_schema
    reqs = [GenerationRequest(messages=it.payload["messages"], max_tokens=int(it.payload["max_tokens"]),
                              temperature=0.0, seed=int(it.payload["record"]["seed"]), json_schema=schema,
                              repetition_penalty=1.3) for it in items]
    return items, reqs


def engine_seconds(rows: list[dict]) -> float:
    """Time covered by the rows' generate calls (the union of [finished_at - latency, finished_at]): items
    run in turn on llama.cpp, together on a fed vLLM engine. ``finished_at`` has 1 s resolution."""
    import datetime as dt
    spans = sorted((end - (r["latency_s"] or 0.0), end) for r in rows
                   for end in [dt.datetime.fromisoformat(r["finished_at"]).timestamp()])
    total, cur = 0.0, None
    for a, b in spans:
        if cur is None or a > cur[1]:
            total += (cur[1] - cur[0]) if cur else 0.0
            cur = [a, b]
        else:
            cur[1] = max(cur[1], b)
    return total + ((cur[1] - cur[0]) if cur else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--papers", type=int, default=4)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    spec = _spec(a.model, a.window, a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        items, reqs = review_requests(spec, Path(tmp) / "papers", a.papers, a.max_tokens)

        t0 = time.perf_counter()
        engine = load_engine(spec)
        t_load = time.perf_counter() - t0
        results = engine.generate(reqs)
        bare_wall = time.perf_counter() - t0
        bare_tokens = sum(r.completion_tokens for r in results)
        bare_texts = [r.text for r in results]
        engine.close()
        del engine

        import ray
        from longsweep.runtime.cluster import connect
        connect("local", num_cpus=a.threads)  # the embedded Ray a workstation run gets
        from longsweep.jobs.base import Planned
        from longsweep.jobs.review import ReviewJob
        from longsweep.runtime.sweep import RunSettings, run_sweep
        out = Path(tmp) / "sweep"
        job = ReviewJob(review_options(a.max_tokens), str(Path(tmp) / "papers"), policy=WorkerPolicy(
            max_retries=0, reset_after_chars=None, reset_on_failure=False, min_chars=0))
        t0 = time.perf_counter()
        s = run_sweep(job, spec, Planned(items), RunSettings(sweep_dir=out, sweep_id="bench", concurrency=(1, 1)))
        sweep_wall = time.perf_counter() - t0
        ray.shutdown()
        import pyarrow.parquet as pq
        rows = {r["key"]: r for r in pq.read_table(out / "reviews").to_pylist()}
        sweep_tokens = sum(r["completion_tokens"] or 0 for r in rows.values())
        same = sum(rows[it.key]["raw_content"] == t for it, t in zip(items, bare_texts))
        engine_s = engine_seconds(list(rows.values()))
    bare_tps, sweep_tps = bare_tokens / bare_wall, sweep_tokens / sweep_wall
    write(f"overhead_{spec.backend}", {
        "command": f"python bench/overhead.py --model {a.model} --papers {a.papers} --window {a.window} "
                   f"--max-tokens {a.max_tokens} --threads {a.threads}",
        "model": a.model, "backend": spec.backend, "items": len(items), "threads": a.threads,
        "bare": {"wall_s": round(bare_wall, 2), "load_s": round(t_load, 2), "completion_tokens": bare_tokens,
                 "tokens_per_s": round(bare_tps, 2)},
        "sweep": {"wall_s": round(sweep_wall, 2), "completion_tokens": sweep_tokens, "rows": s.rows, "ok": s.ok,
                  "tokens_per_s": round(sweep_tps, 2), "engine_s": round(engine_s, 2),
                  "other_s": round(sweep_wall - engine_s, 2)},
        "bare_engine_s": round(bare_wall - t_load, 2),
        "identical_texts": f"{same} of {len(items)}",
        "throughput_ratio_sweep_over_bare": round(sweep_tps / bare_tps, 3),
        "goal": ">= 0.95",
    })


if __name__ == "__main__":
    main()
