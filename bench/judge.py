"""Judge throughput vs the same model generating the same tokens in a generate sweep, side by side.

    python bench/judge.py [--sequences 3] [--max-tokens 256] [--actors 1] [--window 4096] [--rounds 2]

First (untimed) a story sweep makes the source: SmolLM2's answers to the first ``--sequences``
sequences of config/sequences/default.yaml. Then, on one embedded local Ray, in one run:

- judge: ``longsweep judge`` of those stories with config/rubrics/story.yaml (driver planning with exact
  counts and windowing, actor start, model load, JSON-constrained generation, parsing, 7 rows per answer);
- generate: the same judge requests (the same fitted messages, max_tokens, seed, temperature and JSON
  schema) as a ``longsweep generate`` JSONL (plan, actor start, model load, generation, one row each).

Greedy decoding under the same grammar gives the same tokens on both sides. The sides run in ABBA order
(``--rounds 2``: judge, generate, generate, judge), each into a fresh folder, so that a load that drifts
during the run weighs on both alike. Ratio = judge completion tokens/s / generate completion tokens/s,
each summed over its runs end to end (wall time of ``run_job``). Goal >= 0.9: the judge adds planning
and parsing but no model time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import ROOT, write

from longsweep.config import get_model
from longsweep.jobs.generate import GenerateJob, GenerateOptions
from longsweep.jobs.judge import JudgeJob
from longsweep.jobs.judge.options import JudgeOptions
from longsweep.jobs.stories import StoriesJob, StoryOptions
from longsweep.runtime.sweep import RunSettings, run_job

RUBRIC = ROOT / "config" / "rubrics" / "story.yaml"


def _run(job, spec, out: Path, actors: int) -> tuple[float, int, int]:
    """Wall seconds, completion tokens and rows of one sweep into ``out``."""
    import pandas as pd
    t0 = time.perf_counter()
    (summary,) = run_job(job, [spec], RunSettings(sweep_dir=out, sweep_id=out.name, concurrency=(actors, actors)))
    wall = time.perf_counter() - t0
    df = pd.read_parquet(summary.table_dir)
    return wall, int(df["completion_tokens"].fillna(0).sum()), len(df)


def _stories(tmp: Path, n: int, spec, max_tokens: int) -> Path:
    from longsweep.config import read_yaml
    import yaml
    seqs = read_yaml(ROOT / "config" / "sequences" / "default.yaml")["sequences"][:n]
    (tmp / "seq.yaml").write_text(yaml.safe_dump({"sequences": seqs}))
    job = StoriesJob(StoryOptions(max_tokens=max_tokens, repetition_penalty=1.1), str(tmp / "seq.yaml"))
    run_job(job, [spec], RunSettings(sweep_dir=tmp / "stories", sweep_id="stories"))
    return tmp / "stories"


def _as_prompts(judge: JudgeJob, spec, path: Path) -> int:
    """The judge's own requests as generate prompts; returns how many."""
    planned = judge.make_items(spec, "bench")
    schema = judge.rubric.json_schema()
    with path.open("w") as f:
        for it in planned.items:
            p = it.payload  # generate ids hold no '/'
            f.write(json.dumps({"id": it.key.replace("/", "__"), "messages": p["messages"],
                                "max_tokens": p["max_tokens"], "seed": p["seed"], "json_schema": schema,
                                "temperature": judge.rubric.temperature,
                                "repetition_penalty": judge.rubric.repetition_penalty}) + "\n")
    return len(planned.items)


def _side(walls: list[float], toks: list[int], rows: int) -> dict:
    wall, tok = sum(walls), sum(toks)
    return {"wall_s": [round(w, 2) for w in walls], "completion_tokens": toks, "rows_per_run": rows,
            "tokens_per_s": round(tok / wall, 2) if wall else None}


def main() -> None:
    from longsweep.runtime.cluster import connect
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequences", type=int, default=3)
    ap.add_argument("--story-tokens", type=int, default=96)
    ap.add_argument("--max-tokens", type=int, default=256, help="the judge's answer length")
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument("--window", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=2, help="ABBA order: judge, generate, generate, judge, ...")
    a = ap.parse_args()
    spec = get_model("smollm2-135m").with_window(a.window)
    print(connect("local"))
    walls: dict[str, list[float]] = {"judge": [], "generate": []}
    toks: dict[str, list[int]] = {"judge": [], "generate": []}
    rows: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = _stories(tmp, a.sequences, spec, a.story_tokens)
        judge = JudgeJob(JudgeOptions(rubric=str(RUBRIC), max_tokens=a.max_tokens, max_retries=0), str(src))
        n = _as_prompts(judge, spec, tmp / "prompts.jsonl")
        jobs = {"judge": judge, "generate": GenerateJob(GenerateOptions(), str(tmp / "prompts.jsonl"))}
        order = [s for r in range(a.rounds) for s in (("judge", "generate") if r % 2 == 0 else ("generate", "judge"))]
        for i, side in enumerate(order):  # ABBA cancels a load that drifts during the run
            wall, tok, rows[side] = _run(jobs[side], spec, tmp / f"{side}{i}", a.actors)
            walls[side].append(wall)
            toks[side].append(tok)
    if rows["generate"] != n or not all(toks["generate"]):
        raise SystemExit(f"the generate side made {rows['generate']} rows and {toks['generate']} tokens for {n}")
    j, g = _side(walls["judge"], toks["judge"], rows["judge"]), _side(walls["generate"], toks["generate"], n)
    write("judge", {
        "command": f"python bench/judge.py --sequences {a.sequences} --story-tokens {a.story_tokens} "
                   f"--max-tokens {a.max_tokens} --actors {a.actors} --window {a.window} --rounds {a.rounds}",
        "judge_calls": n, "order": order, "judge": j, "generate": g,
        "ratio": round(j["tokens_per_s"] / g["tokens_per_s"], 3) if g["tokens_per_s"] else None,
        "goal": ">= 0.9 (judge tokens/s / generate tokens/s)",
    })


if __name__ == "__main__":
    main()
