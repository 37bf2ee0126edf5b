"""The Engine contract: one model instance behind four calls.

Adapters (``llama_cpp.py``, ``vllm.py``) import their heavy library inside the
constructor, so ``import longsweep`` loads neither vllm, llama_cpp nor torch.
"""

from __future__ import annotations

import abc
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from longsweep.budget import check_request
from longsweep.errors import EngineLoadError  # noqa: F401 - adapters import it from here too
from longsweep.tokens import Message, Tokenizer


# The plan's place of the batch a request comes from (``runtime/plan.py``: ``pack_batch``), set by the worker
# for the batch it runs. A fed engine starts waiting requests in this order, whatever order the batches reach it
# in, so its schedule is the plan's, as one ``LLM.generate`` over the plan would run it.
FEED_ORDER: ContextVar[int] = ContextVar("longsweep_feed_order", default=0)


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion: messages plus sampling settings."""

    messages: list[Message]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    stop: tuple[str, ...] = ()
    repetition_penalty: float = 1.0
    json_schema: dict[str, Any] | None = None
    images: tuple[str, ...] = ()  # base64 images, one per image placeholder in the messages (multimodal vLLM)


@dataclass
class GenerationResult:
    """What came back for one request, with usage and timing as the engine reports them."""

    text: str
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None = None  # prompt tokens reused from the KV/prefix cache, where known
    latency_s: float = 0.0
    prefill_s: float | None = None
    decode_s: float | None = None

    @property
    def tokens_per_s(self) -> float:
        t = self.decode_s if self.decode_s else self.latency_s
        return self.completion_tokens / t if t > 0 else 0.0


class Engine(abc.ABC):
    """A loaded model. Subclasses implement ``_generate``; ``generate`` refuses what cannot fit."""

    tokenizer: Tokenizer
    context_window: int
    backend: str
    image_tokens: int = 0  # prompt tokens one image costs; 0: the engine takes no images

    feeds: bool = False  # True: requests may enter one by one while others run (``agenerate``)

    def _checked_ids(self, r: GenerationRequest) -> list[int]:
        ids = self.tokenizer.encode_messages(r.messages)
        if r.images and not self.image_tokens:
            raise ValueError(f"{type(self).__name__} takes no images; the request has {len(r.images)}")
        check_request(len(ids) + len(r.images) * self.image_tokens, r.max_tokens, self.context_window)
        return ids

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Generate a batch. Every request is checked against the window first with exact
        counts; an over-long request raises ``PromptTooLongError`` and nothing is generated."""
        ids = [self._checked_ids(r) for r in requests]
        return self._generate(requests, ids)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """One request, entering the engine while others run (engines with ``feeds``); checked as in
        ``generate``. Raises ``EngineDeadError`` when the engine itself is dead."""
        return await self._agenerate(request, self._checked_ids(request))

    async def _agenerate(self, request: GenerationRequest, prompt_ids: list[int]) -> GenerationResult:
        raise NotImplementedError(f"{type(self).__name__} is not fed one request at a time")

    @abc.abstractmethod
    def _generate(self, requests: list[GenerationRequest], prompt_ids: list[list[int]]) -> list[GenerationResult]:
        """Generate for requests already checked; ``prompt_ids`` are their exact token ids."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Drop model state carried between calls (KV cache / prefix cache)."""

    def stats(self) -> dict[str, Any]:
        """What the engine counts of itself since it loaded (vLLM: its KV block size and preemptions), for the
        sweep's summary and manifest; {} when it counts nothing."""
        return {}

    @abc.abstractmethod
    def close(self) -> None:
        """Free the model. Explicit, never ``__del__``."""
