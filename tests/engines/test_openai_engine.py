"""The `openai` backend against a real llama-cpp-python server on 127.0.0.1 (SmolLM2, n_ctx 2048).

Faults are real: a proxy that answers 429/503 or rejects a field, a server killed with SIGKILL mid-batch and
restarted on its port, a port where nothing listens, a wrong API key. Unit tests of single pieces at the end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time

import pytest

from fault_proxy import FaultProxy
from helpers import free_port
from longsweep.engines.base import GenerationRequest
from longsweep.engines.openai import EndpointResult, OpenAIEngine, build_payload
from longsweep.engines.openai_http import (Backoff, HTTPItemError, context_window_in, is_context_length,
                                           retry_after_s)
from longsweep.errors import EngineLoadError, FatalEngineError, PromptTooLongError

API_KEY_ENV = "LONGSWEEP_TEST_API_KEY"  # openai.api_key_env of models_openai.yaml
SYSTEM = "You are a concise assistant. Answer in one or two sentences."
TOPICS = ["rivers", "volcanoes", "bees", "glaciers", "comets", "forests", "deserts", "coral reefs"]


def ask(topic: str, max_tokens: int = 24, **kw) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "system", "content": SYSTEM},
                                       {"role": "user", "content": f"Tell me one fact about {topic}."}],
                             max_tokens=max_tokens, temperature=0.0, seed=0, **kw)


def long_request(words: int = 2600) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "Summarise: " + "word " * words}], max_tokens=32)


@pytest.fixture
def engine_for(make_spec, api_key):
    """``engine_for(url, name=..., **openai)``: an engine on ``url``, closed at teardown."""
    made: list[OpenAIEngine] = []

    def make(url: str, name: str = "smollm2-endpoint", **openai) -> OpenAIEngine:
        from longsweep.engines.registry import load_engine
        eng = load_engine(make_spec(name, base_url=url, **openai))
        made.append(eng)
        return eng
    yield make
    for eng in made:
        eng.close()


# ---- a real server ---------------------------------------------------------------------------------------------

def test_batch_of_8_is_deterministic_and_counts_match_the_server(llama_server, engine_for, api_key):
    eng = engine_for(llama_server.url, model=None)  # no model name: the engine asks GET /v1/models
    assert isinstance(eng, OpenAIEngine) and eng.context_window == llama_server.n_ctx
    reqs = [ask(t) for t in TOPICS]
    first = eng.generate(reqs)
    second = eng.generate(reqs)
    assert len(first) == len(second) == 8
    for a, b, r in zip(first, second, reqs):
        assert isinstance(a, EndpointResult)
        assert a.text.strip(), "empty answer"
        assert a.text == b.text, "greedy text differs between two runs"
        ours = len(eng.tokenizer.encode_messages(r.messages))
        assert a.prompt_tokens == ours  # the row's count is ours, exact
        assert a.server_prompt_tokens == ours, f"server counts {a.server_prompt_tokens}, we count {ours}"
        assert not a.prompt_tokens_mismatch
        assert 0 < a.completion_tokens <= 24 and a.finish_reason in ("stop", "length")
        assert a.http_attempts == 1 and a.latency_s > 0 and a.decode_s is None
        assert api_key not in repr(a)  # the key never reaches a result


def test_prompt_over_the_server_window_is_prompt_too_long_and_not_retried(llama_server, engine_for):
    with FaultProxy(llama_server.url) as proxy:
        eng = engine_for(proxy.url, "smollm2-endpoint-overstated")  # registry says 8192, the server has 2048
        long = long_request()
        ours = len(eng.tokenizer.encode_messages(long.messages))
        assert ours > llama_server.n_ctx
        with pytest.raises(PromptTooLongError) as ei:
            eng.generate([long])
        assert proxy.count() == 1, "an over-long prompt must not be retried"
        assert (ei.value.window, ei.value.prompt_tokens, ei.value.max_tokens) == (llama_server.n_ctx, ours, 32)

        # In a batch: the retry layer splits the failed call; the good items' answers come back without resending.
        from longsweep.runtime.retry import _attempt
        outs = _attempt(eng, [ask("bees"), long, ask("comets")])
        assert isinstance(outs[1], PromptTooLongError)
        assert all(isinstance(o, EndpointResult) and o.text.strip() for o in (outs[0], outs[2]))
        assert proxy.count() == 1 + 3, "one POST per item: nothing sent twice"


def test_429_with_retry_after_and_503_are_retried_until_all_succeed(llama_server, engine_for):
    with FaultProxy(llama_server.url, faults=[429, 503, 503], retry_after="1") as proxy:
        eng = engine_for(proxy.url)
        t0 = time.monotonic()
        outs = eng.generate([ask(t, 16) for t in TOPICS[:4]])
        wall = time.monotonic() - t0
    assert all(o.text.strip() for o in outs)
    assert proxy.injected == [429, 503, 503] and proxy.count() == 4 + 3
    assert sum(o.http_attempts for o in outs) == 7
    assert max(o.retry_wait_s for o in outs) >= 1.0 and wall >= 1.0, "Retry-After: 1 not honoured"


def test_transient_faults_beyond_the_retries_fail_that_item_only(llama_server, engine_for):
    with FaultProxy(llama_server.url, faults=[503] * 4) as proxy:
        eng = engine_for(proxy.url, max_in_flight=1)
        with pytest.raises(HTTPItemError) as ei:
            eng.generate([ask("bees", 8)])
        assert ei.value.status == 503 and ei.value.attempts == 4 and proxy.count() == 4
        assert eng.generate([ask("bees", 8)])[0].text.strip()  # not fatal: the next request goes through


def test_server_killed_mid_batch_and_restarted_loses_nothing(new_server, engine_for):
    srv = new_server(threads=1).start()
    eng = engine_for(srv.url, max_retries=60, backoff_s=0.05, backoff_max_s=0.5)  # about 25 s of retries
    reqs = [ask(t, 24) for t in TOPICS]

    async def run():
        counts = [len(eng.tokenizer.encode_messages(r.messages)) for r in reqs]
        tasks = [asyncio.create_task(eng.agenerate_one(r, n)) for r, n in zip(reqs, counts)]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        srv.kill()
        await asyncio.sleep(1.0)  # down for a while: connections refused
        srv.start(wait=False)
        outs = await asyncio.gather(*tasks)
        await eng.aclose()
        return outs, len(pending)

    outs, cut = asyncio.run(run())
    assert cut > 0, "the kill came after the batch had finished"
    assert len(outs) == 8 and all(o.text.strip() for o in outs)
    # max_in_flight is 4 and one had finished: at least 3 were cut (or refused) and sent again, and answered
    assert sum(o.http_attempts > 1 for o in outs) >= 3
    assert srv.starts == 2


def test_server_never_up_is_fatal_within_the_retry_budget(engine_for):
    eng = engine_for(f"http://127.0.0.1:{free_port()}", max_retries=3, backoff_s=0.05, backoff_max_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(FatalEngineError, match=r"unreachable for \d+s after 4 attempts") as ei:
        eng.generate([ask(t, 8) for t in TOPICS[:3]])
    assert time.monotonic() - t0 < 5.0  # waits of at most 0.05 + 0.1 + 0.2 s
    t1 = time.monotonic()
    with pytest.raises(FatalEngineError) as again:  # the engine stays failed: no new round of retries
        eng.generate([ask("bees", 8)])
    assert again.value is ei.value and time.monotonic() - t1 < 0.5


def test_wrong_api_key_is_fatal_without_retry(llama_server, engine_for, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "not-the-key")
    with FaultProxy(llama_server.url) as proxy:
        eng = engine_for(proxy.url)
        with pytest.raises(FatalEngineError, match="HTTP 401") as ei:
            eng.generate([ask("bees", 8)])
        assert proxy.count() == 1
    msg = str(ei.value)
    assert "Invalid API key" in msg and API_KEY_ENV in msg and "not-the-key" not in msg


def test_missing_api_key_refuses_to_load(make_spec, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(EngineLoadError, match=API_KEY_ENV):
        OpenAIEngine(make_spec(base_url="http://127.0.0.1:9"))


def test_json_schema_falls_back_to_llama_cpp_form_once(llama_server, engine_for):
    schema = {"type": "object", "required": ["decision", "rating"], "additionalProperties": False,
              "properties": {"decision": {"enum": ["accept", "reject"]}, "rating": {"enum": [1, 2, 3, 4, 5]}}}
    req = GenerationRequest(messages=[{"role": "user", "content": "Review this paper: it is fine. Answer in JSON."}],
                            max_tokens=48, json_schema=schema)
    with FaultProxy(llama_server.url) as proxy:
        eng = engine_for(proxy.url)
        a = eng.generate([req])[0]
        b = eng.generate([req])[0]
        bodies = proxy.bodies
    # llama-cpp-python's server rejects OpenAI's json_schema form; its own json_object + schema is sent from then on
    assert [x["response_format"]["type"] for x in bodies] == ["json_schema", "json_object", "json_object"]
    for r in (a, b):
        doc = json.loads(r.text)
        assert doc["decision"] in ("accept", "reject") and doc["rating"] in (1, 2, 3, 4, 5)


def test_a_field_the_server_rejects_is_dropped(llama_server, engine_for):
    with FaultProxy(llama_server.url, reject_field="repeat_penalty") as proxy:
        eng = engine_for(proxy.url)
        assert eng.generate([ask("bees", 8)])[0].text.strip()
        assert eng.generate([ask("comets", 8)])[0].text.strip()
        assert proxy.count() == 3 and ["repeat_penalty" in b for b in proxy.bodies] == [True, False, False]


# ---- single pieces ----------------------------------------------------------------------------------------------

def test_backoff_grows_caps_and_honours_retry_after():
    b = Backoff(0.5, 4.0, random.Random(1))
    for k, top in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        d = b.delay(k)
        assert top / 2 <= d <= top
    assert b.delay(1, retry_after=3.0) == 3.0
    assert b.delay(1, retry_after=60.0) == 4.0  # never beyond backoff_max_s


def test_retry_after_parsing():
    assert retry_after_s("2") == 2.0 and retry_after_s(None) is None and retry_after_s("soon") is None
    assert abs(retry_after_s("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) - 10.0) < 1e-6


@pytest.mark.parametrize("status,msg,window", [
    (400, "This model's maximum context length is 2048 tokens. However, you requested 2600 tokens "
          "(2568 in the messages, 32 in the completion).", 2048),  # llama-cpp-python, vLLM, OpenAI
    (400, "'max_tokens' is too large: the prompt is longer than the maximum model length of 4096. [context_length_exceeded]", 4096),
    (400, "the request exceeds the available context size (8192 tokens), try increasing it", 8192),
])
def test_context_length_messages(status, msg, window):
    assert is_context_length(status, msg) and context_window_in(msg) == window


def test_other_client_errors_are_not_context_length():
    assert not is_context_length(400, "Invalid value for 'temperature'")
    assert not is_context_length(429, "maximum context length is 2048")  # 429 is transient, whatever it says


def test_payload_fields_and_structured_modes(make_spec):
    s = make_spec(base_url="http://127.0.0.1:9").openai
    req = GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=7, temperature=0.3, top_p=0.9,
                            seed=5, stop=("END",), repetition_penalty=1.2, json_schema={"type": "object"})
    p = build_payload(req, s, model="m")
    assert (p["model"], p["max_tokens"], p["temperature"], p["top_p"], p["seed"], p["stop"]) == ("m", 7, 0.3, 0.9, 5, ["END"])
    assert p["repeat_penalty"] == p["repetition_penalty"] == 1.2
    assert p["response_format"] == {"type": "json_schema", "json_schema": {"name": "review", "schema": {"type": "object"}}}
    assert build_payload(req, s, model="m", llama_schema=True)["response_format"] == {"type": "json_object", "schema": {"type": "object"}}
    v = build_payload(req, s.model_copy(update={"structured": "vllm"}), model=None)
    assert v["structured_outputs"] == {"json": {"type": "object"}} and "model" not in v and "response_format" not in v
    plain = build_payload(GenerationRequest(messages=[{"role": "user", "content": "hi"}], seed=None), s, model="m")
    assert plain["repeat_penalty"] == 1.0 and "repetition_penalty" not in plain and "seed" not in plain


def test_images_become_data_url_parts_at_their_placeholders(make_spec):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    jpg = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\0" * 16).decode()
    req = GenerationRequest(messages=[{"role": "system", "content": "s"},
                                      {"role": "user", "content": "Fig 1: <image> and Fig 2: <image> end"}],
                            images=(png, jpg))
    p = build_payload(req, make_spec(base_url="http://x").openai, model="m", placeholder="<image>")
    parts = p["messages"][1]["content"]
    assert [x["type"] for x in parts] == ["text", "image_url", "text", "image_url", "text"]
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{png}"
    assert parts[3]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert p["messages"][0] == {"role": "system", "content": "s"}
