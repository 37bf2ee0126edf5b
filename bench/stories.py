"""Stories: KV prefix reuse vs a reset before every turn (the story seed's way), same run.

    python bench/stories.py [--turns 8] [--sequences 2] [--max-tokens 64] [--file config/sequences/serial.yaml]

Runs the same greedy sequences on one llama.cpp engine both ways and prints wall
time, tokens prefilled, and whether the texts are identical. Two engine settings:
batched prefill (fast; llama.cpp's kernels are not batch-invariant, so texts may
part) and n_batch = 1 (every token takes the same path, texts must be identical).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from common import write

from longsweep.config import ModelSpec, WorkerPolicy, get_model
from longsweep.engines.llama_cpp import LlamaCppEngine
from longsweep.jobs.base import WorkItem
from longsweep.jobs.stories import StoriesJob, StoryOptions
from longsweep.jobs.stories.task import StoryTask
from longsweep.store import read_table
from longsweep.runtime.context import WorkerContext
from longsweep.runtime.sink import RowSink
from longsweep.stories.sequences import load_sequences

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run(engine, items: list[WorkItem], reset: str) -> tuple[float, int, list[str]]:
    """The stories task on one engine; its rows go through a sink into a temporary table and are read back."""
    with tempfile.TemporaryDirectory() as tmp:
        sink = RowSink(Path(tmp) / "stories", StoriesJob.schema())
        ctx = WorkerContext(engine, engine.spec, WorkerPolicy(reset_after_chars=None), "bench", sink=sink)
        engine.reset()
        t0 = time.perf_counter()
        asyncio.run(StoryTask(ctx, StoryOptions(reset=reset)).run(items))
        wall = time.perf_counter() - t0
        sink.flush()
        rows = sorted(read_table(Path(tmp) / "stories").to_pylist(), key=lambda r: r["key"])
    prefilled = sum(r["prompt_tokens"] - (r["cached_tokens"] or 0) for r in rows)
    return wall, prefilled, [r["response"] for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--sequences", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--file", default="config/sequences/serial.yaml")
    a = ap.parse_args()
    seqs = [s for s in load_sequences(PROJECT_ROOT / a.file).sequences
            if len(s.prompts) >= a.turns][: a.sequences]
    items = [WorkItem(key=f"{s.id}/run1/bench", cost=1.0, n_rows=a.turns, payload={
        "sequence_id": s.id, "run": 1, "system": s.system, "max_tokens": a.max_tokens, "seed": 0, "stop": [],
        "prompts": [{"name": p.name, "text": p.text} for p in s.prompts[: a.turns]]}) for s in seqs]
    base = get_model("smollm2-135m").model_dump()
    result = {}
    for label, nb in (("batched_prefill", 512), ("batch_1", 1)):
        d = {**base, "llama_cpp": {**base["llama_cpp"], "n_batch": nb, "n_ubatch": nb, "n_threads": 2}}
        eng = LlamaCppEngine(ModelSpec.model_validate(d))
        w_reuse, p_reuse, t_reuse = run(eng, items, "never")
        w_reset, p_reset, t_reset = run(eng, items, "every_turn")
        eng.close()
        result[label] = {"reuse": {"wall_s": round(w_reuse, 2), "prefilled_tokens": p_reuse},
                         "reset_every_turn": {"wall_s": round(w_reset, 2), "prefilled_tokens": p_reset},
                         "wall_speedup": round(w_reset / w_reuse, 2), "prefill_ratio": round(p_reset / max(p_reuse, 1), 2),
                         "identical_text": t_reuse == t_reset}
    if not items:
        raise SystemExit(f"no sequence in {a.file} has {a.turns} turns")
    write("stories", {"command": f"python bench/stories.py --turns {a.turns} --sequences {a.sequences} "
                                 f"--max-tokens {a.max_tokens} --file {a.file}",
                      "sequences": len(items), "turns": a.turns, **result,
                      "goal": ">= 3x faster with identical greedy text"})


if __name__ == "__main__":
    main()
