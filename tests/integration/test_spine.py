"""The spine end to end: a real SmolLM2 in Ray actors on a local Ray, Parquet out."""

import json

import pyarrow.parquet as pq
import pytest

from longsweep.budget import PromptTooLongError
from longsweep.engines.base import GenerationRequest
from longsweep.engines.registry import load_engine
from helpers import generate_planned, run_items, work_items

pytestmark = pytest.mark.integration

PROMPTS = ["Name three colours.", "What is the capital of France?", "Write one sentence about the sea.",
           "Count from one to five.", "Say hello politely."]


def _items(spec, tok):
    raw = [{"id": f"p{i}", "messages": [{"role": "user", "content": p}], "sampling": {"max_tokens": 24}}
           for i, p in enumerate(PROMPTS)]
    raw.append({"id": "huge", "messages": [{"role": "user", "content": "word " * 9000}], "sampling": {"max_tokens": 24}})
    planned = generate_planned(raw, spec)
    return planned.items, planned.error_rows


def test_sweep_on_two_actors_writes_one_row_per_key_and_matches_direct_engine(ray_local, smollm, smol_tok, tmp_path):
    todo, errors = _items(smollm, smol_tok)
    assert [e["error_kind"] for e in errors] == ["prompt_too_long"]
    assert "window is 8192" in errors[0]["error"]
    s = run_items(todo, smollm, tmp_path, errors=errors, concurrency=(2, 2), batch_items=2)
    rows = pq.read_table(tmp_path / "generations").to_pylist()
    keys = [r["key"] for r in rows]
    assert sorted(keys) == sorted([it.key for it in todo] + ["huge/smollm2-135m"])
    assert len(set(keys)) == len(keys)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == len(PROMPTS) and s.ok == len(PROMPTS) and s.errors == 1
    assert all(r["text"].strip() and r["completion_tokens"] > 0 and r["prompt_tokens"] > 0 for r in ok)
    assert len({r["worker"] for r in ok}) >= 1
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["latest"]["counts"]["ok"] == len(PROMPTS)
    assert "ray" in manifest["latest"]["packages"]

    # greedy through the actor == the engine called directly on the same messages
    eng = load_engine(smollm)
    try:
        by_id = {r["id"]: r["text"] for r in ok}
        for it in todo:
            direct = eng.generate([GenerationRequest(messages=it.payload["messages"], max_tokens=24)])[0]
            eng.reset()
            assert direct.text == by_id[it.payload["id"]], it.key
        # an over-long request never reaches the engine
        with pytest.raises(PromptTooLongError, match="window is 8192"):
            eng.generate([GenerationRequest(messages=[{"role": "user", "content": "word " * 9000}], max_tokens=24)])
    finally:
        eng.close()

    # a rerun into the same folder does nothing new
    s2 = run_items(todo, smollm, tmp_path, errors=errors)
    assert s2.ran == 0 and s2.skipped == len(todo) + 1 and s2.rows == len(rows)


def test_empty_answers_are_retried_with_resets_then_an_error_row(ray_local, smollm, tmp_path):
    from longsweep.config import WorkerPolicy
    # a stop string that the chat model emits first makes the answer empty for real
    items = work_items([{"id": "e", "key": "e", "cost": 1, "messages": [{"role": "user", "content": "Say hello."}],
              "sampling": {"max_tokens": 16, "stop": ["H", "h", "I", " "]}},
             {"id": "fine", "key": "fine", "cost": 1, "messages": [{"role": "user", "content": "Say hello."}],
              "sampling": {"max_tokens": 16}}])
    run_items(items, smollm, tmp_path, policy=WorkerPolicy(max_retries=2, min_chars=1))
    rows = {r["key"]: r for r in pq.read_table(tmp_path / "generations").to_pylist()}
    assert rows["e"]["status"] == "error" and rows["e"]["attempts"] == 3 and rows["e"]["resets"] >= 2
    assert rows["e"]["error_kind"] == "empty_output"
    assert rows["fine"]["status"] == "ok" and rows["fine"]["attempts"] == 1
