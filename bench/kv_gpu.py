"""Simulated on one 80 GB GPU (bench/kv_sim.py): a long-context review sweep, KV-bound.

SEA-E (a Mistral-7B fine-tune; the same KV shape as Llama-3.1-8B: 32 layers x 8 KV heads x head_dim 128 x
bf16 = 128 KiB per token), ``gpu_memory_utilization`` 0.9, a 32,768 window; the KV room after the weights
and vLLM's overhead comes from ``longsweep.kvfit`` (what ``longsweep models --check`` prints). Papers x 2
versions x 3 runs; prompts log-normal (median 20,000 tokens, sigma 0.5, capped at the window less the
answer's 4,096), answers log-normal (median 900, sigma 0.8, cap 4,096; ``max_tokens`` 4,096 for all, so a
planner cannot see answer lengths). vLLM's defaults for an 80 GB H100-class GPU with ``LLM``:
``max_num_seqs`` 1024, ``max_num_batched_tokens`` 16,384, block size 16, chunked prefill.

A step's time is a model of a bandwidth-bound decoder, not a measurement (``longsweep.kvfit.StepCost``):
``t_weights`` (the weights read once a step) + ``t_kv`` per token of context attended by each scheduled request
+ ``t_prefill`` per prefilled token. Tokens/s = answer tokens / simulated time; the mean running set is
weighted by step time.

- (a) vLLM FCFS, the bare engine: every item submitted at once in the review job's order (one ``LLM.generate``);
- (b) our feed: what ``runtime/sweep._execute`` does for sea-e: ``feed_settings`` (the batch size and batches
  in flight) and ``plan_fed`` (the job's order), one actor, a batch's items submitted as it arrives, the next
  batch when one ends; (b0) the same with the items longest prompt first (``plan.order_items``), what
  ``plan_fed`` did before;
- (c) the KV-bound optimum (an oracle that knows every answer's length): a request enters only when the
  free blocks hold its prompt (less shared blocks) and its whole answer, any waiting request that fits, so
  nothing is recomputed, the running set is the most that KV holds.

``--layouts GPUS``: tensor parallel 1, 2 and 4 on GPUS GPUs, each simulated (one actor, its KV room and step
cost from ``kvfit``: the weights and each token's KV split over the actor's GPUs, 0.5 ms of all-reduces a step
at TP > 1, modelled), against ``kvfit.layouts``' steady-state estimate, what ``longsweep models --check`` prints.

    python bench/kv_gpu.py --seeds 5
    python bench/kv_gpu.py --layouts 4
"""

from __future__ import annotations

import argparse
import math
import random
import time

from common import write
from kv_sim import KvEngine, KvReq, KvShape, replay_fed

from longsweep.kvfit import StepCost, kv_bytes_per_token, kv_room_bytes, layouts
from longsweep.runtime.plan import item_cost

SEA_E = KvShape(32, 8, 128, 2)
SEA_E_PARAMS = 7_241_732_096  # Mistral-7B-Instruct-v0.2


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


def designs(items: list[dict], engine_args: dict) -> dict[str, dict]:
    from longsweep.config import get_model
    from longsweep.runtime.plan import order_items
    from longsweep.runtime.sweep import feed_settings, plan_fed
    out = {}
    t0 = time.perf_counter()
    e = KvEngine(**engine_args)
    for it in items:
        e.submit(req(it))
    out["(a) vLLM FCFS, all at once"] = {**e.run().row(), "sim_s": round(time.perf_counter() - t0, 1)}
    # what runtime/sweep._execute does for sea-e (no max_num_seqs in the registry: the sweep's 256), one actor
    feed = feed_settings(get_model("sea-e"), n_items=len(items), n_actors=1)
    for name, order in (("(b) our feed", items), ("(b0) the feed before: longest prompt first", order_items(items))):
        t0 = time.perf_counter()
        e = KvEngine(**engine_args)
        batches = plan_fed(order, feed.batch_items)
        replay_fed(e, batches, feed.in_flight, req)
        out[f"{name}: {len(batches)} batches of <= {max(map(len, batches))}, {feed.in_flight} in flight"] = {
            **e.run().row(), "sim_s": round(time.perf_counter() - t0, 1)}
    t0 = time.perf_counter()
    e = KvEngine(**{**engine_args, "reserve": True})
    for it in items:
        e.submit(req(it))
    out["(c) KV-bound optimum (oracle: answer lengths known)"] = {**e.run().row(),
                                                                   "sim_s": round(time.perf_counter() - t0, 1)}
    return out


def layout_check(a) -> None:
    """``kvfit.layouts`` (what ``longsweep models --check`` prints) against the simulator: per tensor parallel
    size, one actor simulated (vLLM FCFS, all items at once) with that layout's KV blocks and step cost
    (``kvfit.StepCost.for_model``), its tokens/s times the actors; the model's steady-state estimate beside it."""
    items = review_items(a.papers, random.Random(a.seed), window=a.window, max_tokens=a.max_tokens)
    mean_prompt = round(sum(i["prompt"] for i in items) / len(items))
    mean_answer = round(sum(i["answer"] for i in items) / len(items))
    model = {x.tp: x for x in layouts(a.layouts, gpu_bytes=a.gpu_gb * 1e9, weights_bytes=SEA_E_PARAMS * 2,
                                      params=SEA_E_PARAMS, layers=32, kv_heads=8, head_dim=128,
                                      prompt_tokens=mean_prompt, answer_tokens=mean_answer, runs=3,
                                      max_num_seqs=a.max_num_seqs, block_size=a.block_size)}
    out = {}
    for tp, lay in sorted(model.items()):
        cost = StepCost.for_model(weights_bytes=SEA_E_PARAMS * 2, params=SEA_E_PARAMS,
                                  kv_bytes_per_token=kv_bytes_per_token(32, 8, 128, 2, tp=tp), tp=tp)
        t0 = time.perf_counter()
        e = KvEngine(lay.kv_tokens // a.block_size, a.block_size, max_num_seqs=a.max_num_seqs,
                     max_batched_tokens=a.budget, cost=cost)
        for it in items:
            e.submit(req(it))
        r = e.run().row()
        sim = round(r["tokens_per_s"] * lay.actors, 1)
        out[f"tp{tp}"] = {"actors": lay.actors, "kv_tokens_per_actor": lay.kv_tokens, "cost": vars(cost),
                          "simulated": {"tokens_per_s": sim, "mean_running": r["mean_running_in_time"],
                                        "preemptions": r["preemptions"]},
                          "model": {"tokens_per_s": lay.tokens_per_s, "running": lay.running},
                          "model_over_simulated": round(lay.tokens_per_s / sim, 3) if sim else None,
                          "sim_s": round(time.perf_counter() - t0, 1)}
        print(f"  tp {tp} x {lay.actors} actors: KV {lay.kv_tokens} tokens an actor; simulated {sim:.0f} tok/s "
              f"(running {r['mean_running_in_time']}), model {lay.tokens_per_s:.0f} tok/s (running {lay.running})",
              flush=True)
    order = lambda key: sorted(out, key=lambda k: -out[k][key]["tokens_per_s"])  # noqa: E731
    cmd = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if k in (
        "papers", "gpu_gb", "window", "max_tokens", "block_size", "max_num_seqs", "budget", "seed", "layouts"))
    write(f"kv_gpu_layouts_{a.layouts}gpus_{a.gpu_gb:g}gb", {
        "command": f"python bench/kv_gpu.py {cmd}", "items": len(items), "mean_prompt_tokens": mean_prompt,
        "mean_answer_tokens": mean_answer, "layouts": out, "best_simulated": order("simulated"),
        "best_model": order("model"), "same_best": order("simulated")[0] == order("model")[0]})


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
    ap.add_argument("--seeds", type=int, default=1, help="workloads drawn with seeds seed .. seed+seeds-1")
    ap.add_argument("--layouts", type=int, default=0, metavar="GPUS",
                    help="instead: tensor parallel 1, 2, 4 on GPUS GPUs, the simulator against kvfit.layouts")
    a = ap.parse_args()
    if a.layouts:
        return layout_check(a)
    room = kv_room_bytes(a.gpu_gb * 1e9, 0.9, SEA_E_PARAMS * 2)
    blocks = SEA_E.blocks(room, a.block_size)
    cost = StepCost(a.t_weights_ms / 1e3, a.t_kv_ns / 1e9, a.t_prefill_us / 1e6)
    engine_args = dict(num_blocks=blocks, block_size=a.block_size, max_num_seqs=a.max_num_seqs,
                       max_batched_tokens=a.budget, cost=cost)
    print(f"KV room {room / 1e9:.1f} GB = {blocks} blocks of {a.block_size} = {blocks * a.block_size} tokens")
    per_seed, ratios = {}, {}
    for seed in range(a.seed, a.seed + a.seeds):
        items = review_items(a.papers, random.Random(seed), window=a.window, max_tokens=a.max_tokens)
        res = designs(items, engine_args)
        opt = res[[k for k in res if k.startswith("(c)")][0]]["tokens_per_s"]
        fcfs = res[[k for k in res if k.startswith("(a)")][0]]["tokens_per_s"]
        print(f"seed {seed}: {len(items)} items, median prompt {sorted(i['prompt'] for i in items)[len(items) // 2]}")
        for k, r in res.items():
            r["of_optimum"], r["of_fcfs"] = round(r["tokens_per_s"] / opt, 4), round(r["tokens_per_s"] / fcfs, 4)
            ratios.setdefault(k.split(":")[0], []).append((r["of_fcfs"], r["of_optimum"]))
            print(f"  {k:<66} {r['tokens_per_s']:>7.1f} tok/s  running {r['mean_running_in_time']:>5.1f}  "
                  f"preempted {r['preemptions']:>4}  recomputed {r['recomputed_tokens']:>7}  "
                  f"{r['of_fcfs']:.4f} of (a)  {r['of_optimum']:.4f} of (c)")
        per_seed[seed] = {"items": len(items), "prompt_tokens_median": sorted(i["prompt"] for i in items)[len(items) // 2],
                          "answer_tokens": sum(i["answer"] for i in items), "designs": res}
    worst = {k: {"min_of_fcfs": min(f for f, _ in v), "min_of_optimum": min(o for _, o in v)} for k, v in ratios.items()}
    for k, w in worst.items():
        print(f"over {a.seeds} seed(s): {k:<45} min {w['min_of_fcfs']:.4f} of (a), min {w['min_of_optimum']:.4f} of (c)")
    cmd = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items())
    write(f"kv_gpu_kv{a.t_kv_ns:g}ns" + (f"_{a.seeds}seeds" if a.seeds > 1 else ""), {
        "command": f"python bench/kv_gpu.py {cmd}",
        "kv_room_bytes": room, "kv_blocks": blocks, "kv_tokens": blocks * a.block_size,
        "worst_over_seeds": worst, "seeds": per_seed})

if __name__ == "__main__":
    main()
