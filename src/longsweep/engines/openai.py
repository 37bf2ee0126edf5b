"""A model behind an OpenAI-compatible HTTP endpoint (``backend: openai``): a vLLM server, llama.cpp's
server, llama-cpp-python's server, a hosted API.

The server owns the model and its cache; this engine owns the token counts (the model's own tokenizer,
``spec.tokenizer``), the window check, the concurrency (``openai.max_in_flight`` requests in flight) and
the retries of transient HTTP faults (``openai_http.py``). ``generate`` runs a batch concurrently on a
private event loop in a background thread; ``agenerate_one`` is the same call for one request, awaited on
the caller's own loop (an async worker that keeps the server fed). docs/ENDPOINT.md has the settings, the
error classes and how a failing item of a batch becomes one error row.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from longsweep.budget import check_request
from longsweep.config import ModelSpec, OpenAISettings, resolve_path
from longsweep.engines.base import Engine, EngineLoadError, GenerationRequest, GenerationResult
from longsweep.engines.openai_http import (ContextLengthError, HTTPItemError, message_text, request_json,
                                           usage_count)
from longsweep.errors import FatalEngineError, PromptTooLongError
from longsweep.secrets import Secret, from_env, redact
from longsweep.tokens import Message

__all__ = ["OpenAIEngine", "EndpointResult", "HTTPItemError", "BatchItemErrors", "build_payload", "endpoint_tokenizer"]

logger = logging.getLogger(__name__)

# Fields that not every server knows. llama.cpp's servers call the repetition penalty `repeat_penalty` and
# default it to 1.1, so it is always sent; vLLM's `repetition_penalty` only when it is not 1.0. A server
# that rejects one by name (a hosted API: "Unrecognized request argument") gets requests without it.
_OPTIONAL_FIELDS = ("repeat_penalty", "repetition_penalty")


@dataclass
class EndpointResult(GenerationResult):
    """A ``GenerationResult`` with what the server said: ``prompt_tokens`` stays our exact count."""

    server_prompt_tokens: int | None = None  # usage.prompt_tokens of the answer
    prompt_tokens_mismatch: bool = False  # |server - ours| > openai.prompt_tokens_tolerance
    server_completion_tokens: int | None = None  # usage.completion_tokens, when it is an integer
    completion_tokens_mismatch: bool = False  # the server's count was missing or impossible: ours is used
    http_attempts: int = 1  # HTTP requests this result took (1 = no retry)
    retry_wait_s: float = 0.0  # seconds spent in backoff before the answer


class BatchItemErrors(RuntimeError):
    """Some items of a batch failed (their own errors are kept); the others' results are kept too, and the
    retry layer's one-by-one split of the batch gets them back without a new HTTP request."""


def _image_part(b64: str) -> dict[str, Any]:
    head = base64.b64decode(b64[:16] + "=" * (-len(b64[:16]) % 4))
    mime = ("image/png" if head.startswith(b"\x89PNG") else "image/jpeg" if head.startswith(b"\xff\xd8")
            else "image/gif" if head.startswith(b"GIF8") else "image/webp" if head[8:12] == b"WEBP" else "image/png")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64}"}}


def _with_images(messages: list[Message], images: tuple[str, ...], placeholder: str | None) -> list[dict]:
    """Content parts: each placeholder in a user turn becomes the next image; images left over go after the
    last user turn's text."""
    out: list[dict] = [dict(m) for m in messages]
    todo = list(images)
    for m in out:
        if m["role"] != "user" or not placeholder or placeholder not in m["content"] or not todo:
            continue
        parts: list[dict[str, Any]] = []
        pieces = m["content"].split(placeholder)
        for k, text in enumerate(pieces):
            if text:
                parts.append({"type": "text", "text": text})
            if k < len(pieces) - 1:
                parts.append(_image_part(todo.pop(0)) if todo else {"type": "text", "text": placeholder})
        m["content"] = parts
    if todo:
        last = next((m for m in reversed(out) if m["role"] == "user"), None)
        if last is None:
            raise ValueError(f"{len(todo)} image(s) but no user message to put them in")
        if isinstance(last["content"], str):
            last["content"] = [{"type": "text", "text": last["content"]}]
        last["content"].extend(_image_part(b) for b in todo)
    return out


def build_payload(req: GenerationRequest, settings: OpenAISettings, *, model: str | None,
                  placeholder: str | None = None, dropped: frozenset[str] = frozenset(),
                  llama_schema: bool = False) -> dict[str, Any]:
    """The JSON body of ``POST /v1/chat/completions`` for one request."""
    p: dict[str, Any] = {
        "messages": _with_images(req.messages, req.images, placeholder) if req.images else list(req.messages),
        "max_tokens": req.max_tokens, "temperature": req.temperature, "top_p": req.top_p,
    }
    if model:
        p["model"] = model
    if req.seed is not None:
        p["seed"] = req.seed
    if req.stop:
        p["stop"] = list(req.stop)
    p["repeat_penalty"] = req.repetition_penalty
    if req.repetition_penalty != 1.0:
        p["repetition_penalty"] = req.repetition_penalty
    if req.json_schema is not None and settings.structured == "response_format":
        p["response_format"] = ({"type": "json_object", "schema": req.json_schema} if llama_schema else
                                {"type": "json_schema", "json_schema": {"name": "review", "schema": req.json_schema}})
    elif req.json_schema is not None and settings.structured == "vllm":
        p["structured_outputs"] = {"json": req.json_schema}
    for f in dropped:
        p.pop(f, None)
    return p


def _fingerprint(req: GenerationRequest) -> str:
    blob = json.dumps(dataclasses.asdict(req), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class _LoopState:
    """What belongs to one event loop: its HTTP client and its in-flight limit."""

    client: httpx.AsyncClient
    sem: asyncio.Semaphore


class OpenAIEngine(Engine):
    backend = "openai"
    feeds = True  # one request at a time, up to max_in_flight per actor (Engine.agenerate)

    def __init__(self, spec: ModelSpec, *, tokenizer: Any = None, api_key: Secret | str | None = None, **overrides):
        s = spec.openai
        if overrides:
            s = OpenAISettings.model_validate({**s.model_dump(), **overrides})
        if not s.base_url:
            raise EngineLoadError(f"model {spec.name!r}: openai.base_url is not set (the server's root URL)")
        # the key: given by the driver (a Secret, never in a runtime_env), else this process's environment
        self._key: Secret | None = None
        if s.api_key_env:
            self._key = (Secret(api_key) if isinstance(api_key, str) else api_key) or from_env(s.api_key_env)
            if not self._key:
                raise EngineLoadError(f"model {spec.name!r}: ${s.api_key_env} (openai.api_key_env) is not set")
        self.spec, self.settings = spec, s
        root = s.base_url.rstrip("/")
        self.server = root[:-3] if root.endswith("/v1") else root
        try:
            self.tokenizer = tokenizer or endpoint_tokenizer(spec)
        except Exception as e:  # noqa: BLE001 - no exact counts, no sweep: say why
            raise EngineLoadError(f"model {spec.name!r}: cannot load its tokenizer: {e}") from e
        self.context_window = spec.n_ctx
        self.image_tokens = spec.tokens_per_image if spec.tokens_per_image and spec.image_placeholder else 0
        self._model: str | None = s.model
        self._model_known = s.model is not None
        self._dropped: set[str] = set()
        self._llama_schema = False
        self._fatal: FatalEngineError | None = None
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._leftovers: dict[str, deque] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- one request, on the caller's event loop ------------------------------------------------------------

    async def _agenerate(self, request: GenerationRequest, prompt_ids: list[int]) -> GenerationResult:
        return await self.agenerate_one(request, len(prompt_ids) + len(request.images) * self.image_tokens)

    async def agenerate_one(self, request: GenerationRequest, prompt_tokens: int) -> EndpointResult:
        """Generate one request on the running event loop; ``prompt_tokens`` is our exact count of its prompt
        (images included, ``image_tokens`` each). Raises ``PromptTooLongError`` (ours, or the server's 400),
        ``HTTPItemError`` (this item failed) or ``FatalEngineError`` (no request can succeed: stop)."""
        if self._fatal is not None:
            raise self._fatal
        if request.images and not self.image_tokens:
            raise ValueError(f"model {self.spec.name!r} takes no images (tokens_per_image and image_placeholder "
                             f"unset); the request has {len(request.images)}")
        check_request(prompt_tokens, request.max_tokens, self.context_window)
        st = self._state()
        try:
            async with st.sem:
                body, info = await self._chat(st.client, request, prompt_tokens)
        except FatalEngineError as e:
            if self._fatal is None:  # requests that fail in the same moment: the first one's error stays
                self._fatal = e
            raise self._fatal from None
        return self._result(body, info, prompt_tokens, request.max_tokens)

    async def _chat(self, client: httpx.AsyncClient, req: GenerationRequest, prompt_tokens: int):
        if not self._model_known:
            self._model, self._model_known = await self._server_model(client), True
        attempts = 0
        while True:
            payload = build_payload(req, self.settings, model=self._model, placeholder=self.spec.image_placeholder,
                                    dropped=frozenset(self._dropped), llama_schema=self._llama_schema)
            try:
                body, info = await request_json(client, "POST", f"{self.server}/v1/chat/completions", payload,
                                                settings=self.settings, server=self.server, headers=self._headers(),
                                                secret=self._key)
                info.attempts += attempts
                return body, info
            except ContextLengthError as e:
                raise PromptTooLongError(prompt_tokens + req.max_tokens, e.window or self.context_window,
                                         prompt_tokens, req.max_tokens, refused_by=self.server,
                                         server_message=e.message) from e
            except HTTPItemError as e:
                attempts += e.attempts
                if not self._adapt(e, payload):
                    raise

    def _adapt(self, e: HTTPItemError, payload: dict[str, Any]) -> bool:
        """A 400/422 (or llama-cpp-python's 500 "validation error") that names a field this server does not
        take: send without it, or in the form it takes, from now on. False: nothing to change, a real error."""
        if e.status not in (400, 422, 500):  # llama-cpp-python's server answers 500 to a body it cannot validate
            return False
        for f in _OPTIONAL_FIELDS:
            if f in payload and f in e.message and f not in self._dropped:
                logger.warning("server %s rejects %r: requests go without it from now on (%s)", self.server, f, e)
                self._dropped.add(f)
                return True
        rf = payload.get("response_format") or {}
        if rf.get("type") == "json_schema" and ("json_schema" in e.message or "response_format" in e.message):
            logger.warning("server %s rejects response_format json_schema; sending json_object + schema (%s)",
                           self.server, e)
            self._llama_schema = True
            return True
        return False

    async def _server_model(self, client: httpx.AsyncClient) -> str | None:
        """``openai.model`` unset: the first model the server lists (vLLM needs the served name)."""
        body, _ = await request_json(client, "GET", f"{self.server}/v1/models", None, settings=self.settings,
                                     server=self.server, headers=self._headers(), secret=self._key)
        data = body.get("data") if isinstance(body, dict) else None
        return str(data[0]["id"]) if data else None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.reveal()}"} if self._key else {}

    def _result(self, body: Any, info, prompt_tokens: int, max_tokens: int | None = None) -> EndpointResult:
        """The answer as a result. The text is never lost to a bad ``usage``: a count that is not an integer
        or cannot be true (over ``max_tokens``) is replaced by ours, and the row says so."""
        try:
            choice = body["choices"][0]
            text = message_text((choice.get("message") or {}).get("content"))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
            raise HTTPItemError(200, redact(f"the answer has no choices[0].message text ({e}): "
                                            f"{json.dumps(body, default=str)[:300]}", self._key)) from None
        text = redact(text, self._key)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        server_pt = usage_count(usage, "prompt_tokens")
        server_ct = usage_count(usage, "completion_tokens")
        completion, mismatch = server_ct, False
        if server_ct is None or (max_tokens is not None and server_ct > max_tokens):
            completion, mismatch = len(self.tokenizer.encode(text)), usage.get("completion_tokens") is not None
            if mismatch:
                logger.warning("server %s: usage.completion_tokens=%s is not a possible count (max_tokens %s); "
                               "counted %d with the model's tokenizer", self.server,
                               self._shown(usage.get("completion_tokens")), max_tokens, completion)
        if server_pt is None and usage.get("prompt_tokens") is not None:
            logger.warning("server %s: usage.prompt_tokens=%s is not a count; ignored", self.server,
                           self._shown(usage.get("prompt_tokens")))
        tol = self.settings.prompt_tokens_tolerance
        details = usage.get("prompt_tokens_details")
        return EndpointResult(
            text=text, finish_reason=str(choice.get("finish_reason") or "stop")[:40], prompt_tokens=prompt_tokens,
            completion_tokens=completion, cached_tokens=usage_count(details, "cached_tokens"),
            latency_s=info.latency_s, decode_s=None, server_prompt_tokens=server_pt,
            prompt_tokens_mismatch=server_pt is not None and abs(server_pt - prompt_tokens) > tol,
            server_completion_tokens=server_ct, completion_tokens_mismatch=mismatch,
            http_attempts=info.attempts, retry_wait_s=round(info.waited_s, 3),
        )

    def _shown(self, value: Any) -> str:
        """A server's value as a log shows it: short, and without the key."""
        return redact(repr(value)[:40], self._key)

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        st = self._states.get(loop)
        if st is None:
            s = self.settings
            n = s.max_in_flight
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(s.timeout_s, connect=min(s.timeout_s, 10.0)),
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))
            st = self._states[loop] = _LoopState(client, asyncio.Semaphore(n))
        return st

    # ---- a batch, on the private loop -----------------------------------------------------------------------

    def _generate(self, requests: list[GenerationRequest], prompt_ids: list[list[int]]) -> list[GenerationResult]:
        counts = [len(ids) + len(r.images) * self.image_tokens for r, ids in zip(requests, prompt_ids)]
        if len(requests) == 1 and (kept := self._take_leftover(requests[0])) is not None:
            if isinstance(kept, Exception):
                raise kept
            return [kept]
        self._leftovers.clear()  # a new batch: the split of the last failed one is over
        outs = self._run(self._gather(requests, counts))
        errors = [o for o in outs if isinstance(o, Exception)]
        if not errors:
            return outs
        if len(requests) == 1:
            raise errors[0]
        for r, o in zip(requests, outs):
            self._leftovers.setdefault(_fingerprint(r), deque()).append(o)
        raise BatchItemErrors(f"{len(errors)} of {len(requests)} requests failed (first: "
                              f"{type(errors[0]).__name__}: {errors[0]}); the others' results are kept")

    def _take_leftover(self, req: GenerationRequest):
        q = self._leftovers.get(_fingerprint(req))
        return q.popleft() if q else None

    async def _gather(self, requests: list[GenerationRequest], counts: list[int]) -> list[Any]:
        async def one(r: GenerationRequest, n: int):
            try:
                return await self.agenerate_one(r, n)
            except FatalEngineError:
                raise  # cancels the rest of the batch: nothing can succeed
            except Exception as e:  # noqa: BLE001 - this item's own error, kept beside the others' results
                return e

        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(one(r, n)) for r, n in zip(requests, counts)]
        except* FatalEngineError as eg:
            raise (self._fatal or eg.exceptions[0]) from None
        return [t.result() for t in tasks]

    def _run(self, coro):
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="openai-engine", daemon=True)
                self._thread.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # ---- state ------------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """The server owns its cache: nothing to drop but results kept from a failed batch."""
        self._leftovers.clear()

    async def aclose(self) -> None:
        """Close the client of the running loop (an async worker's)."""
        st = self._states.pop(asyncio.get_running_loop(), None)
        if st is not None:
            await st.client.aclose()

    def close(self) -> None:
        loop, self._loop = self._loop, None
        for lp, st in list(self._states.items()):
            if lp is loop:
                asyncio.run_coroutine_threadsafe(st.client.aclose(), lp).result(timeout=10)
            elif not lp.is_closed():
                try:
                    if lp.is_running():
                        asyncio.run_coroutine_threadsafe(st.client.aclose(), lp)
                    else:
                        lp.run_until_complete(st.client.aclose())
                except RuntimeError as e:  # noqa: PERF203 - a loop going away: its sockets go with it
                    logger.debug("client of another loop not closed: %s", e)
        self._states.clear()
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            loop.close()


def endpoint_tokenizer(spec: ModelSpec):
    """The exact tokenizer of an endpoint's model: a GGUF's vocabulary and chat template when ``spec.tokenizer``
    (else the weights' path) is a ``.gguf``, else a Hugging Face tokenizer (folder or hub id)."""
    name = spec.tokenizer or spec.resolve_weights()
    if name.endswith(".gguf"):
        from longsweep.engines.llama_tokenizer import LlamaCppTokenizer
        return LlamaCppTokenizer(str(resolve_path(name, spec.registry_dir)), supports_system=spec.supports_system_role)
    from longsweep.engines.hf_tokenizer import HFTokenizer
    return HFTokenizer(name, supports_system=spec.supports_system_role)
