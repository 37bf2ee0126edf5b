import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT.parent / "shared" / "papers"
sys.path.insert(0, str(ROOT / "tests"))
from shared_sweeps import shared_papers, shared_sweep  # noqa: E402,F401  the sweeps tests share
from s3_server import s3  # noqa: E402,F401  a real S3-compatible server on 127.0.0.1


def _has(mod: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(mod) is not None


@pytest.fixture(scope="session")
def papers_dir() -> Path:
    if not (PAPERS / "README.md").exists():
        pytest.skip(f"the real papers folder ../shared/papers is absent")
    return PAPERS


@pytest.fixture(scope="session")
def smollm():
    from longsweep.config import get_model
    if not _has("llama_cpp"):
        pytest.skip("llama-cpp-python is not installed (make test installs it)")
    return get_model("smollm2-135m")


@pytest.fixture(scope="session")
def smol_tok(smollm):
    from longsweep.engines.registry import load_tokenizer
    return load_tokenizer(smollm)


@pytest.fixture(scope="session")
def ray_local():
    """A real embedded local Ray for the whole session (4 logical CPUs on 2 cores)."""
    import ray
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level="WARNING", runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}})
    yield ray
    ray.shutdown()


def pytest_runtest_logreport(report):
    """With LONGSWEEP_TEST_TIMES=FILE, each phase's seconds are appended to FILE as it ends (a tier's
    slowest tests can be read while it still runs; pytest's --durations table comes only at the end)."""
    path = os.environ.get("LONGSWEEP_TEST_TIMES")
    if path:
        with open(path, "a") as f:
            f.write(f"{report.duration:.2f}\t{report.when}\t{report.outcome}\t{report.nodeid}\n")
