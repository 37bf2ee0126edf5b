"""Engine construction by backend name, with the heavy import inside the adapter."""

from __future__ import annotations

from longsweep.config import ModelSpec
from longsweep.engines.base import Engine, EngineLoadError


def load_engine(spec: ModelSpec, **overrides) -> Engine:
    """Load the engine of ``spec``; raises ``EngineLoadError`` with what to do when it cannot."""
    if spec.backend == "llama_cpp":
        from longsweep.engines.llama_cpp import LlamaCppEngine
        return LlamaCppEngine(spec, **overrides)
    if spec.backend == "vllm":
        from longsweep.engines.vllm import VllmEngine
        return VllmEngine(spec, **overrides)
    if spec.backend == "openai":
        from longsweep.engines.openai import OpenAIEngine
        return OpenAIEngine(spec, **overrides)
    raise EngineLoadError(f"unknown backend {spec.backend!r}")
