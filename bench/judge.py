"""Judge throughput vs the same model generating the same tokens in a generate sweep, side by side.

    python bench/judge.py [--sequences 3] [--max-tokens 256] [--actors 1] [--window 4096]

First (untimed) a story sweep makes the source: SmolLM2's answers to the first ``--sequences``
sequences of config/sequences/default.yaml. Then, on one embedded local Ray, in one run:

- judge: ``longsweep judge`` of those stories with config/rubrics/story.yaml (driver planning with exact
  counts and windowing, actor start, model load, JSON-constrained generation, parsing, 7 rows per answer);
- generate: the same judge requests (the same fitted messages, max_tokens, seed, temperature and JSON
  schema) as a ``longsweep generate`` JSONL (plan, actor start, model load, generation, one row each).

Greedy decoding under the same grammar gives the same tokens on both sides. Ratio = judge completion
tokens/s / generate completion tokens/s, each end to end (wall time of ``run_job``). Goal >= 0.9: the
judge adds planning and parsing but no extra model time.
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
            p = it.payload
            f.write(json.dumps({"id": it.key, "messages": p["messages"], "max_tokens": p["max_tokens"],
                                "seed": p["seed"], "temperature": judge.rubric.temperature, "json_schema": schema,
                                "repetition_penalty": judge.rubric.repetition_penalty}) + "\n")
    return len(planned.items)


def main() -> None:
    from longsweep.runtime.cluster import connect
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequences", type=int, default=3)
    ap.add_argument("--story-tokens", type=int, default=96)
    ap.add_argument("--max-tokens", type=int, default=256, help="the judge's answer length")
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument("--window", type=int, default=4096)
    a = ap.parse_args()
    spec = get_model("smollm2-135m").with_window(a.window)
    print(connect("local"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = _stories(tmp, a.sequences, spec, a.story_tokens)
        judge = JudgeJob(JudgeOptions(rubric=str(RUBRIC), max_tokens=a.max_tokens, max_retries=0), str(src))
        n = _as_prompts(judge, spec, tmp / "prompts.jsonl")
        j_wall, j_tok, j_rows = _run(judge, spec, tmp / "judged", a.actors)
        g_wall, g_tok, g_rows = _run(GenerateJob(GenerateOptions(), str(tmp / "prompts.jsonl")), spec,
                                     tmp / "generated", a.actors)
    j_tps, g_tps = j_tok / j_wall, g_tok / g_wall
    write("judge", {
        "command": f"python bench/judge.py --sequences {a.sequences} --story-tokens {a.story_tokens} "
                   f"--max-tokens {a.max_tokens} --actors {a.actors} --window {a.window}",
        "judge_calls": n, "judge": {"wall_s": round(j_wall, 2), "completion_tokens": j_tok, "rows": j_rows,
                                    "tokens_per_s": round(j_tps, 2)},
        "generate": {"wall_s": round(g_wall, 2), "completion_tokens": g_tok, "rows": g_rows,
                     "tokens_per_s": round(g_tps, 2)},
        "ratio": round(j_tps / g_tps, 3) if g_tps else None, "goal": ">= 0.9 (judge tokens/s / generate tokens/s)",
    })


if __name__ == "__main__":
    main()
