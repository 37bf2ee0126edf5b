"""llama.cpp adapter (llama-cpp-python): one request at a time, KV prefix kept between calls.

llama-cpp-python reuses the longest matching token prefix already in the KV
cache, so turn k of a story only prefills what is new. ``reset()`` clears the
cache for real (token count and KV memory).
"""

from __future__ import annotations

import logging
import time

from longsweep.config import ModelSpec
from longsweep.engines.base import Engine, GenerationRequest, GenerationResult
from longsweep.errors import EngineLoadError
from longsweep.engines.llama_tokenizer import LlamaCppTokenizer, _import_llama_cpp

logger = logging.getLogger(__name__)


def _common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class LlamaCppEngine(Engine):
    backend = "llama_cpp"

    def __init__(self, spec: ModelSpec, *, n_threads: int | None = None):
        llama_cpp, _ = _import_llama_cpp()
        self._lib = llama_cpp
        s = spec.llama_cpp
        path = spec.resolve_weights()
        threads = n_threads or s.n_threads or max(1, int(spec.resources.num_cpus))
        t0 = time.perf_counter()
        try:
            self._llm = llama_cpp.Llama(
                model_path=path, n_ctx=spec.n_ctx, n_gpu_layers=s.n_gpu_layers, n_batch=s.n_batch,
                # prefill threads too: llama-cpp-python defaults them to every core of the machine, which
                # oversubscribes the CPUs as soon as two actors share a node
                n_ubatch=s.n_ubatch, n_threads=threads, n_threads_batch=threads, flash_attn=s.flash_attn,
                offload_kqv=s.offload_kqv,
                verbose=False,
            )
        except Exception as e:  # noqa: BLE001 - any load failure is fatal and must say what failed
            raise EngineLoadError(f"llama.cpp could not load {path}: {e}") from e
        self.load_s = time.perf_counter() - t0
        self.spec = spec
        self.context_window = spec.n_ctx
        self.tokenizer = LlamaCppTokenizer(llama=self._llm, supports_system=spec.supports_system_role)
        logger.info("llama.cpp loaded %s in %.2fs (n_ctx=%d, threads=%d)", path, self.load_s, spec.n_ctx, threads)

    def _generate(self, requests: list[GenerationRequest], prompt_ids: list[list[int]]) -> list[GenerationResult]:
        return [self._one(r, ids) for r, ids in zip(requests, prompt_ids)]

    def _one(self, req: GenerationRequest, ids: list[int]) -> GenerationResult:
        llm, lib = self._llm, self._lib
        cached = _common_prefix(llm._input_ids.tolist(), ids) if llm.n_tokens > 0 else 0
        cached = min(cached, len(ids) - 1)  # llama.cpp re-evaluates at least one token
        grammar = None
        if req.json_schema is not None:
            import json
            grammar = lib.LlamaGrammar.from_json_schema(json.dumps(req.json_schema), verbose=False)
        lib.llama_perf_context_reset(llm._ctx.ctx)
        t0 = time.perf_counter()
        out = llm.create_completion(
            prompt=ids, max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p,
            seed=req.seed, stop=list(req.stop) or None, grammar=grammar, repeat_penalty=req.repetition_penalty,
        )
        latency = time.perf_counter() - t0
        perf = lib.llama_perf_context(llm._ctx.ctx)
        choice, usage = out["choices"][0], out["usage"]
        return GenerationResult(
            text=choice["text"], finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"],
            cached_tokens=max(cached, 0), latency_s=latency,
            prefill_s=perf.t_p_eval_ms / 1000.0, decode_s=perf.t_eval_ms / 1000.0,
        )

    def reset(self) -> None:
        self._llm.reset()
        self._llm._ctx.kv_cache_clear()

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()
