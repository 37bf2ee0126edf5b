"""Story sequences on a real local Ray with the real SmolLM2."""

import json

import pyarrow.parquet as pq
import pytest

from longsweep.jobs.stories import StoriesJob, StoryOptions

from helpers import run_one

pytestmark = pytest.mark.integration

SEQ = """sequences:
  - id: fox
    system: You are a storyteller. Answer in two or three sentences.
    prompts:
      - {name: start, text: "Begin a story about a fox who wants to fly."}
      - {name: middle, text: "Continue the story."}
      - {name: end, text: "End the story."}
"""


def _rows(path):
    return sorted(pq.read_table(path).to_pylist(), key=lambda r: r["key"])


def batch_invariant(spec):
    """llama.cpp's CPU kernels are not batch-invariant: a prompt prefilled in one batch and the same
    tokens decoded one by one give slightly different KV values, so greedy texts can part after a few
    dozen tokens. With n_batch = n_ubatch = 1 every token takes the same path and the texts are equal."""
    from longsweep.config import ModelSpec
    d = spec.model_dump()
    d["llama_cpp"].update(n_batch=1, n_ubatch=1)
    return ModelSpec.model_validate(d)


def test_prefix_reuse_gives_the_same_greedy_text_with_less_prefill(ray_local, smollm, tmp_path):
    smollm = batch_invariant(smollm)
    f = tmp_path / "s.yaml"
    f.write_text(SEQ)
    common = dict(max_tokens=48, temperature=0.0, repetition_penalty=1.0, buffer=0)
    run_one(StoriesJob(StoryOptions(reset="never", **common), f), smollm, tmp_path / "reuse", sweep_id="a")
    run_one(StoriesJob(StoryOptions(reset="every_turn", **common), f), smollm, tmp_path / "reset", sweep_id="b")
    reuse, reset = _rows(tmp_path / "reuse" / "stories"), _rows(tmp_path / "reset" / "stories")
    assert [r["turn"] for r in reuse] == [1, 2, 3] and all(r["status"] == "ok" for r in reuse + reset)
    assert [r["response"] for r in reuse] == [r["response"] for r in reset]
    prefilled = lambda rows: sum(r["prompt_tokens"] - (r["cached_tokens"] or 0) for r in rows)
    assert prefilled(reuse) < prefilled(reset)
    assert reuse[2]["cached_tokens"] > reuse[1]["prompt_tokens"] // 2
    assert all((r["cached_tokens"] or 0) == 0 for r in reset)
    # turn k sees turns 1..k-1: context grows
    assert reuse[0]["context_tokens"] < reuse[1]["context_tokens"] < reuse[2]["context_tokens"]
    assert all(r["tokens_per_s"] > 0 and r["prefill_s"] is not None for r in reuse)


def test_history_outgrows_a_small_window(ray_local, smollm, tmp_path):
    prompts = "\n".join(f'      - {{name: t{i}, text: "Continue the long story with much more detail, part {i}."}}'
                        for i in range(1, 7))
    f = tmp_path / "long.yaml"
    f.write_text(f"sequences:\n  - id: long\n    prompts:\n{prompts}\n")
    spec = smollm.with_window(576)  # 6 turns of up to 96 tokens: the history outgrows 472 tokens by turn 5
    opts = StoryOptions(max_tokens=96, temperature=0.0, repetition_penalty=1.1, buffer=8, min_chars=1, max_retries=0)
    run_one(StoriesJob(opts, f), spec, tmp_path, sweep_id="w")
    rows = _rows(tmp_path / "stories")
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert all(r["context_tokens"] + 96 + 8 <= 576 for r in rows)
    assert all(r["prompt_tokens"] == r["context_tokens"] for r in rows)
    assert any(r["turns_dropped"] > 0 or r["tokens_dropped"] > 0 for r in rows)


def test_forced_empty_answers_retry_then_error_and_others_go_on(ray_local, smollm, tmp_path):
    stops = json.dumps(list("aeiouAEIOU") + [" ", "\n", ",", "."])
    f = tmp_path / "s.yaml"
    f.write_text(SEQ + f"  - id: mute\n    stop: {stops}\n    prompts:\n"
                 '      - {name: a, text: "Tell me a story."}\n      - {name: b, text: "Continue."}\n')
    run_one(StoriesJob(StoryOptions(max_tokens=32, max_retries=2, min_chars=10), f), smollm, tmp_path, sweep_id="e")
    rows = {r["key"]: r for r in _rows(tmp_path / "stories")}
    mute1 = rows["mute/run1/smollm2-135m/turn01"]
    assert mute1["status"] == "error" and mute1["attempts"] == 3 and mute1["resets"] >= 2
    assert rows["mute/run1/smollm2-135m/turn02"]["error_kind"] == "skipped_after_failure"
    assert all(r["status"] == "ok" for k, r in rows.items() if k.startswith("fox/"))


def test_story_seed_json_runs_and_resumes(ray_local, smollm, tmp_path):
    f = tmp_path / "bench.json"
    f.write_text(json.dumps({"castle": [{"name": "p1", "text": "Describe a castle in one sentence."},
                                        {"name": "p2", "text": "Who lives there?"}],
                             "bad": [{"name": "p1", "text": ""}]}))
    opts = StoryOptions(max_tokens=32, runs=2)
    s = run_one(StoriesJob(opts, f), smollm, tmp_path, sweep_id="j")
    rows = _rows(tmp_path / "stories")
    assert len(rows) == 2 * 2 + 2  # 2 runs x 2 turns, and the bad sequence's error row per run
    assert {r["error_kind"] for r in rows if r["sequence_id"] == "bad"} == {"bad_input"}
    assert s.rows == 6
    again = run_one(StoriesJob(opts, f), smollm, tmp_path, sweep_id="j")
    assert again.ran == 0 and len(_rows(tmp_path / "stories")) == 6
