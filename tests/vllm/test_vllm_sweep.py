"""The vLLM adapter inside a Ray actor: the same sweep path as llama.cpp."""

import pyarrow.parquet as pq
import pytest

from longsweep.engines.base import GenerationRequest

pytestmark = pytest.mark.vllm


def test_generate_sweep_through_a_vllm_actor_matches_the_engine(ray_local, vllm_spec, vllm_engine, tmp_path):
    from helpers import generate_planned, run_items

    raw = [{"id": f"p{i}", "messages": [{"role": "user", "content": p}], "sampling": {"max_tokens": 20}}
           for i, p in enumerate(["Name three colours.", "What is 2 + 2?", "Say hello politely."])]
    planned = generate_planned(raw, vllm_spec)
    todo = planned.items
    assert not planned.error_rows
    s = run_items(todo, vllm_spec, tmp_path, sweep_id="v", batch_items=8)
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "generations").to_pylist()}
    assert s.ok == 3 and set(rows) == {"p0", "p1", "p2"}
    assert all(r["backend"] == "vllm" and r["status"] == "ok" for r in rows.values())
    # the same batch in the same order as the planner gave the actor (bf16 numerics depend on batch layout)
    from longsweep.runtime.plan import batches_per_actor, plan_batches
    batches = plan_batches(todo, max_items=8, n_actors=1, per_actor=batches_per_actor("vllm"))
    assert len(batches) == 1  # a batching engine gets the whole (small) sweep in one call
    for batch in batches:
        vllm_engine.reset()
        direct = vllm_engine.generate([GenerationRequest(messages=it.payload["messages"], max_tokens=20)
                                       for it in batch])
        for it, d in zip(batch, direct):
            assert rows[it.payload["id"]]["text"] == d.text
