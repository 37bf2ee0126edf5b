"""Engines and tokenizers by backend name, with the heavy import inside the adapter."""

from __future__ import annotations

from longsweep.config import ModelSpec
from longsweep.engines.base import Engine
from longsweep.errors import ConfigError, EngineLoadError, LongsweepError
from longsweep.secrets import Secret
from longsweep.tokens import HeuristicTokenizer, TiktokenTokenizer, Tokenizer


def load_engine(spec: ModelSpec, *, api_key: Secret | None = None) -> Engine:
    """Load the engine of ``spec``; raises ``EngineLoadError`` with what to do when it cannot. ``api_key``: an
    endpoint's key handed over by the driver (else the engine reads ``openai.api_key_env`` itself)."""
    if spec.backend == "llama_cpp":
        from longsweep.engines.llama_cpp import LlamaCppEngine
        return LlamaCppEngine(spec)
    if spec.backend == "vllm":
        from longsweep.engines.vllm import VllmEngine
        return VllmEngine(spec)
    if spec.backend == "openai":
        from longsweep.engines.openai import OpenAIEngine
        return OpenAIEngine(spec, api_key=api_key)
    raise EngineLoadError(f"unknown backend {spec.backend!r}")


def load_tokenizer(spec: ModelSpec, *, fallback: str | None = None) -> Tokenizer:
    """The model's own tokenizer, without loading weights.

    llama.cpp models: the GGUF's vocabulary (``vocab_only``) and its chat template.
    vLLM models: the Hugging Face tokenizer of the folder (or ``spec.tokenizer``).
    ``fallback`` ("tiktoken" or "chars/N") is used only when asked for, and its
    counts are estimates (``tokenizer.exact`` is False).
    """
    if fallback:
        if fallback == "tiktoken":
            return TiktokenTokenizer()
        if fallback.startswith("chars/"):
            return HeuristicTokenizer(float(fallback.split("/", 1)[1]))
        raise ValueError(f"unknown fallback tokenizer {fallback!r} (use 'tiktoken' or 'chars/N')")
    try:
        return _model_tokenizer(spec)
    except LongsweepError:  # already one line (a missing file)
        raise
    except EngineLoadError as e:  # an endpoint's tokenizer: its message names the model
        raise ConfigError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - a loader's error (no chat template, a broken file): one line
        raise ConfigError(f"model {spec.name!r}: its tokenizer could not be loaded: {e}") from None


def _model_tokenizer(spec: ModelSpec) -> Tokenizer:
    if spec.backend == "llama_cpp":
        from longsweep.engines.llama_tokenizer import LlamaCppTokenizer
        return LlamaCppTokenizer(spec.resolve_weights(), supports_system=spec.supports_system_role)
    if spec.backend == "openai":
        from longsweep.engines.openai import endpoint_tokenizer
        return endpoint_tokenizer(spec)
    name = spec.tokenizer or spec.resolve_weights()
    from longsweep.engines.hf_tokenizer import HFTokenizer
    return HFTokenizer(name, supports_system=spec.supports_system_role)
