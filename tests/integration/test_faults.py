"""A worker process that dies part way: Ray restarts the actor (which reloads the model) and retries."""

import pyarrow.parquet as pq
import pytest

from longsweep.config import WorkerPolicy
from longsweep.runtime.sweep import run_sweep

pytestmark = pytest.mark.integration


def test_actor_death_midway_loses_nothing_and_duplicates_nothing(ray_local, smollm, tmp_path):
    marker = tmp_path / "died-once"
    items = [{"id": f"p{i}", "key": f"p{i}", "cost": 10 - i, "messages": [{"role": "user", "content": f"Say {i}."}],
              "sampling": {"max_tokens": 8}} for i in range(6)]
    policy = WorkerPolicy(min_chars=1, fault_injection={"p3": f"exit_once:{marker}"})
    s = run_sweep(items, spec=smollm, task="generate", table="generations", sweep_dir=tmp_path, sweep_id="f",
                  policy=policy, concurrency=(1, 1), batch_items=1)
    assert marker.exists(), "the worker did not die: the fault was not injected"
    keys = [r["key"] for r in pq.read_table(tmp_path / "generations").to_pylist()]
    assert sorted(keys) == [f"p{i}" for i in range(6)]
    assert s.ok == 6
    workers = {r["worker"] for r in pq.read_table(tmp_path / "generations").to_pylist()}
    assert len(workers) >= 2  # the restarted actor is a new process that loaded the model again
