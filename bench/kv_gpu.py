"""Simulated on one 80 GB GPU (bench/kv_sim.py): a long-context review sweep, KV-bound.

SEA-E (a Mistral-7B fine-tune; the same KV shape as Llama-3.1-8B: 32 layers x 8 KV heads x head_dim 128 x
bf16 = 128 KiB per token), ``gpu_memory_utilization`` 0.9, a 32,768 window; the KV room after the weights
and vLLM's overhead comes from ``longsweep.kvfit`` (what ``longsweep models --check`` prints). Papers x 2
versions x 3 runs; prompts log-normal (median 20,000 tokens, sigma 0.5, capped at the window less the
answer's 4,096), answers log-normal (median 900, sigma 0.8, cap 4,096; ``max_tokens`` 4,096 for all, so a
planner cannot see answer lengths). vLLM's defaults for an 80 GB H100-class GPU with ``LLM``:
``max_num_seqs`` 1024, ``max_num_batched_tokens`` 16,384, block size 16, chunked prefill.

A step's time is a model of a bandwidth-bound decoder, not a measurement: ``t_weights`` (the weights read
once a step) + ``t_kv`` per token of context attended by each scheduled request + ``t_prefill`` per prefilled
token. Tokens/s = answer tokens / simulated time; the mean running set is weighted by step time.

- (a) vLLM FCFS, the bare engine: every item submitted at once in the review job's order (one ``LLM.generate``);
- (b) our feed: ``runtime/sweep.plan_fed`` batches with ``feed_for``'s size and batches in flight, one actor,
  a batch's items submitted as it arrives, the next batch when one ends;
- (c) the KV-bound optimum (an oracle that knows every answer's length): a request enters only when the
  free blocks hold its prompt (less shared blocks) and its whole answer, any waiting request that fits, so
  nothing is recomputed, the running set is the most that KV holds.

    python bench/kv_gpu.py
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import deque

from common import write
from kv_sim import KvEngine, KvReq, KvShape

from longsweep.kvfit import kv_room_bytes
from longsweep.runtime.plan import item_cost

SEA_E = KvShape(32, 8, 128, 2)
SEA_E_PARAMS = 7_241_732_096  # Mistral-7B-Instruct-v0.2


class GpuCost:
    def __init__(self, t_weights: float, t_kv: float, t_prefill: float):
        self.t_weights, self.t_kv, self.t_prefill = t_weights, t_kv, t_prefill

    def __call__(self, n: int, prefill: int, context: int) -> float:
        return self.t_weights + self.t_kv * context + self.t_prefill * prefill


def lognormal(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, int(round(median * math.exp(rng.gauss(0.0, sigma))))))


def review_items(papers: int, rng: random.Random, *, window: int, max_tokens: int, runs: int = 3) -> list[dict]:
    """The review job's items in its order: paper by paper, v1 runs then v2 runs, one group per paper."""
    out = []
    for p in range(papers):
        for v in ("v1", "v2"):
            prompt = lognormal(rng, 20000, 0.5, window - max_tokens)
            for k in range(runs):
                out.append({"key": f"p{p:04d}/{v}/run{k + 1}", "group": f"p{p:04d}", "version": f"p{p:04d}/{v}",
                            "prompt": prompt, "answer": lognormal(rng, 900, 0.8, max_tokens),
                            "cost": item_cost(prompt, max_tokens)})
    return out


def req(it: dict, done=None) -> KvReq:
    return KvReq(it["key"], it["version"], it["prompt"], it["answer"], done)


def replay_fed(items: list[dict], engine: KvEngine, batches: list[list[dict]], in_flight: int) -> None:
    """One actor of our runtime: ``in_flight`` batches at once, the next one the moment one ends."""
    queue = deque(batches)

    def start() -> None:
        if queue:
            batch = queue.popleft()
            left = [len(batch)]

            def one_done() -> None:
                left[0] -= 1
                if left[0] == 0:
                    start()
            for it in batch:
                engine.submit(req(it, one_done))

    for _ in range(in_flight):
        start()


def designs(items: list[dict], engine_args: dict) -> dict[str, dict]:
    from longsweep.runtime.sweep import feed_for, plan_fed
    out = {}
    t0 = time.perf_counter()
    e = KvEngine(**engine_args)
    for it in items:
        e.submit(req(it))
    out["(a) vLLM FCFS, all at once"] = {**e.run().row(), "sim_s": round(time.perf_counter() - t0, 1)}
    feed = feed_for(256, n_items=len(items), n_actors=1)  # sea-e sets no max_num_seqs: the sweep's 256
    t0 = time.perf_counter()
    e = KvEngine(**engine_args)
    batches = plan_fed(items, feed.batch_items)
    replay_fed(items, e, batches, feed.in_flight)
    out[f"(b) our feed: {len(batches)} batches of <= {max(map(len, batches))}, {feed.in_flight} in flight"] = {
        **e.run().row(), "sim_s": round(time.perf_counter() - t0, 1)}
    t0 = time.perf_counter()
    e = KvEngine(**{**engine_args, "reserve": True})
    for it in items:
        e.submit(req(it))
    out["(c) KV-bound optimum (oracle: answer lengths known)"] = {**e.run().row(),
                                                                   "sim_s": round(time.perf_counter() - t0, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", type=int, default=200)
    ap.add_argument("--gpu-gb", type=float, default=80.0)
    ap.add_argument("--window", type=int, default=32768)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--max-num-seqs", type=int, default=1024)
    ap.add_argument("--budget", type=int, default=16384)
    ap.add_argument("--t-weights-ms", type=float, default=7.5, help="a step's fixed time (the weights read once)")
    ap.add_argument("--t-kv-ns", type=float, default=65.0, help="per context token attended (128 KiB at 2 TB/s)")
    ap.add_argument("--t-prefill-us", type=float, default=75.0, help="per prefilled token")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    room = kv_room_bytes(a.gpu_gb * 1e9, 0.9, SEA_E_PARAMS * 2)
    blocks = SEA_E.blocks(room, a.block_size)
    items = review_items(a.papers, random.Random(a.seed), window=a.window, max_tokens=a.max_tokens)
    cost = GpuCost(a.t_weights_ms / 1e3, a.t_kv_ns / 1e9, a.t_prefill_us / 1e6)
    engine_args = dict(num_blocks=blocks, block_size=a.block_size, max_num_seqs=a.max_num_seqs,
                       max_batched_tokens=a.budget, cost=cost)
    res = designs(items, engine_args)
    opt = res[[k for k in res if k.startswith("(c)")][0]]["tokens_per_s"]
    fcfs = res[[k for k in res if k.startswith("(a)")][0]]["tokens_per_s"]
    for r in res.values():
        r["of_optimum"], r["of_fcfs"] = round(r["tokens_per_s"] / opt, 3), round(r["tokens_per_s"] / fcfs, 3)
    print(f"KV room {room / 1e9:.1f} GB = {blocks} blocks of {a.block_size} = {blocks * a.block_size} tokens")
    for k, r in res.items():
        print(f"  {k:<60} {r['tokens_per_s']:>8.0f} tok/s  running {r['mean_running_in_time']:>6.1f}  "
              f"preempted {r['preemptions']:>5}  recomputed {r['recomputed_tokens']:>9}  {r['of_optimum']:.3f} of (c)")
    cmd = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items())
    write(f"kv_gpu_kv{a.t_kv_ns:g}ns", {
        "command": f"python bench/kv_gpu.py {cmd}",
        "kv_room_bytes": room, "kv_blocks": blocks, "kv_tokens": blocks * a.block_size,
        "items": len(items), "prompt_tokens_median": sorted(i["prompt"] for i in items)[len(items) // 2],
        "answer_tokens": sum(i["answer"] for i in items), "designs": res})


if __name__ == "__main__":
    main()
