"""Planning scale: time and peak memory for the driver's planning of N work items.

What is timed is what the driver does before any model runs, for a review sweep of
N = papers x versions x runs items: build the keyed items (prompt messages shared by
reference between runs of one paper version, as review_items does: WorkItems), read the resume
index (a Parquet of already-done keys: a tenth of N), skip what is done, order longest
first, cut cost-balanced batches and pack them as JSON (each distinct prompt once per
batch). The prompt text itself is a short stand-in: a real prompt's bytes are held
once per paper version wherever it lives. Peak memory is Python's (tracemalloc) during
planning; the ingest and fit of the papers themselves are benchmarked in fit.py.

    python bench/plan_scale.py
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from common import write  # noqa: F401 - sets sys.path

import pyarrow as pa
import pyarrow.parquet as pq

from longsweep.jobs.base import WorkItem
from longsweep.store import done_items
from longsweep.runtime.plan import item_cost, pack_batch, plan_batches


def plan(n: int, tmp: Path, runs: int = 4) -> dict:
    rng = random.Random(n)
    n_versions = n // runs
    table_dir = tmp / f"reviews-{n}"
    table_dir.mkdir()
    done_n = n // 10
    pq.write_table(pa.table({"key": [f"paper{i // 2:06d}/v{i % 2 + 1}/run1/m" for i in range(done_n)]}),
                   table_dir / "done.parquet")
    tracemalloc.start()
    t0 = time.perf_counter()
    items = []
    for v in range(n_versions):
        pid, ver = f"paper{v // 2:06d}", f"v{v % 2 + 1}"
        tokens = min(32_000, int(rng.lognormvariate(9.4, 0.6)))
        # a stand-in for the fitted prompt (the real one is the paper: its bytes are the object store's, not planning's)
        messages = [{"role": "user", "content": f"<fitted prompt of {pid} {ver}>"}]
        for k in range(1, runs + 1):  # as jobs/review/driver.review_items makes them
            items.append(WorkItem(key=f"{pid}/{ver}/run{k}/m", group=pid, cost=item_cost(tokens, 1024), payload={
                "record": {"paper_id": pid, "version": ver, "run": k, "seed": k}, "messages": messages,
                "images": [], "max_tokens": 1024}))
    done = done_items(table_dir)
    todo = [it for it in items if it.key not in done]
    batches = plan_batches(todo, max_items=8, n_actors=64)
    packed = [pack_batch(b) for b in batches]  # what the driver hands to Ray Data
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"items": len(items), "skipped_done": len(items) - len(todo), "batches": len(batches), "packed_mb": round(sum(map(len, packed)) / 2**20, 1),
            "wall_s": round(wall, 3), "peak_mb": round(peak / 2**20, 1), "peak_bytes_per_item": round(peak / n)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,30000,100000")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [plan(int(n), Path(tmp)) for n in a.sizes.split(",")]
    write("plan_scale", {"command": f"python bench/plan_scale.py --sizes {a.sizes}", "runs": rows,
                         "goal": "100k items planned in <= 60 s; memory per item flat as N grows"})


if __name__ == "__main__":
    main()
