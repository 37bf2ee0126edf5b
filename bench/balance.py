"""Balance: makespan / (total work / actors) for a skewed mix, our cost-balanced
longest-first batches vs fixed-size batches in input order.

Part 1 (real engine): SmolLM2 on a local Ray, 2 actors, a mix of a few long prompts
and many short ones, long ones last in input order (a folder sorted by name can do
that). Work per actor is the sum of its items' measured latencies; the balance
ratio is max(actor work) / (total work / actors).

Part 2 (simulation, labelled so): the cost model with 100 actors and 10,000 items whose
lengths follow a log-normal paper-length distribution, actors pulling batches in
order as they free up (what Ray Data's actor pool does).

    python bench/balance.py
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import write  # noqa: F401 - sets sys.path

from longsweep.config import ModelSpec, WorkerPolicy, get_model
from longsweep.runtime.plan import item_cost, plan_batches


def fixed_batches(items: list[dict], size: int) -> list[list[dict]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def real_mix(n_short: int, n_long: int, max_tokens: int) -> list[dict]:
    words = "The committee reviewed the experimental protocol and the statistical analysis in detail. "
    items = []
    for i in range(n_short + n_long):
        long = i >= n_short  # long prompts last in input order
        # distinct from the first token, so no item reuses another's KV prefix
        text = f"Document {i}. " + (words * (90 if long else 2)) + "Summarise this in one sentence."
        n_tok = len(text) // 4
        items.append({"id": f"i{i:02d}", "key": f"i{i:02d}", "cost": item_cost(n_tok, max_tokens),
                      "messages": [{"role": "user", "content": text}],
                      "sampling": {"max_tokens": max_tokens, "temperature": 0.0}})
    return items


def run_real(raw: list[dict], actors: int, batch: int) -> dict:
    import pyarrow.parquet as pq
    import ray
    from longsweep.jobs.base import Planned, WorkItem
    from longsweep.jobs.generate import GenerateJob, GenerateOptions
    from longsweep.runtime.sweep import RunSettings, run_sweep
    d = get_model("smollm2-135m").model_dump()
    d["llama_cpp"]["n_threads"] = 1
    spec = ModelSpec.model_validate(d)
    items = [WorkItem(key=r["key"], cost=r["cost"], payload={"id": r["id"], "messages": r["messages"],
                                                             "sampling": r["sampling"]}) for r in raw]
    job = GenerateJob(GenerateOptions(), "(bench items)", policy=WorkerPolicy(max_retries=0, min_chars=0))
    ray.init(num_cpus=actors, include_dashboard=False, logging_level="ERROR")
    out = {}
    try:
        for name, fixed in (("ours: longest first, cost-balanced", False), ("fixed-size batches, input order", True)):
            with tempfile.TemporaryDirectory() as tmp:
                settings = RunSettings(sweep_dir=Path(tmp), sweep_id="bal", concurrency=(actors, actors),
                                       batch_items=batch)
                t0 = time.perf_counter()
                with input_order_planner(batch) if fixed else contextlib.nullcontext():
                    run_sweep(job, spec, Planned(items), settings)
                wall = time.perf_counter() - t0
                rows = pq.read_table(Path(tmp) / "generations").to_pylist()
            work = defaultdict(float)
            for r in rows:
                work[r["worker"]] += r["latency_s"] or 0.0
            loads = sorted(work.values(), reverse=True) + [0.0] * (actors - len(work))
            total = sum(loads)
            out[name] = {"wall_s": round(wall, 2), "actor_work_s": [round(x, 2) for x in loads],
                         "balance_ratio": round(max(loads) / (total / actors), 3)}
    finally:
        ray.shutdown()
    return out


@contextlib.contextmanager
def input_order_planner(size: int):
    """The sweep's planner replaced by fixed-size batches in input order (the benchmark's baseline)."""
    from longsweep.runtime import sweep
    saved = sweep.plan_batches
    sweep.plan_batches = lambda todo, **_: fixed_batches(list(todo), size)
    try:
        yield
    finally:
        sweep.plan_batches = saved


def simulate(batches: list[list[dict]], actors: int) -> float:
    """Actors take the next batch in order when they free up; returns makespan / ideal."""
    free = [0.0] * actors
    heapq.heapify(free)
    for b in batches:
        t = heapq.heappop(free)
        heapq.heappush(free, t + sum(it["cost"] for it in b))
    total = sum(it["cost"] for b in batches for it in b)
    return max(free) / (total / actors)


def run_simulation(n_items: int, actors: int, batch: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    items = []
    for i in range(n_items):
        tokens = min(32_000, int(rng.lognormvariate(9.4, 0.6)))  # median ~12k tokens, a long tail
        items.append({"key": f"p{i:05d}", "cost": item_cost(tokens, 1024)})
    ours = simulate(plan_batches(items, max_items=batch, n_actors=actors), actors)
    naive = simulate(fixed_batches(items, batch), actors)
    return {"items": n_items, "actors": actors, "batch_items": batch,
            "ours_balance_ratio": round(ours, 4), "fixed_input_order_balance_ratio": round(naive, 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", type=int, default=12)
    ap.add_argument("--long", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    a = ap.parse_args()
    real = run_real(real_mix(a.short, a.long, a.max_tokens), a.actors, a.batch)
    sim = run_simulation(10_000, 100, 8)
    write("balance", {
        "command": f"python bench/balance.py --short {a.short} --long {a.long} --max-tokens {a.max_tokens} "
                   f"--actors {a.actors} --batch {a.batch}",
        "real_engine": {"model": "smollm2-135m", "actors": a.actors, "items": a.short + a.long, **real},
        "simulation_100_actors (cost model, not measured)": sim,
        "goal": "balance ratio <= 1.05",
    })


if __name__ == "__main__":
    main()
