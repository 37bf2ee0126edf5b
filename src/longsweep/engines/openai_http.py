"""HTTP for the ``openai`` backend: one JSON call with retries, and what each failure means.

A call is retried inside the engine only for transient faults: a refused or dropped
connection, a timeout, 429 and 5xx. Waits grow exponentially from ``backoff_s`` with jitter,
honour ``Retry-After``, and never exceed ``backoff_max_s``. What stays wrong after
``max_retries`` retries, and what is wrong at once, is one of:

- ``FatalEngineError``: 401/403 (a wrong or missing API key), or the server still unreachable
  (connection refused) when the retries are spent: no request can succeed, the sweep stops;
- ``ContextLengthError``: a 4xx that says the prompt does not fit the server's window; the
  engine turns it into ``PromptTooLongError`` with its own counts (never retried);
- ``HTTPItemError``: any other 4xx, or 429/5xx/timeouts left after the retries: that item fails.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import httpx

from longsweep.config import OpenAISettings
from longsweep.errors import FatalEngineError
from longsweep.secrets import Secret, redact

# How servers word an over-long prompt: OpenAI and llama-cpp-python's server ("This model's maximum context
# length is N tokens"), vLLM (the same, or "... is longer than the maximum model length"), llama.cpp's own
# server ("exceeds the available context size"), TGI ("must have less than N tokens").
_CONTEXT_RE = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|maximum model length|context window"
    r"|exceeds? the available context|input validation error: .*must have less than", re.I)
_WINDOW_RE = re.compile(r"maximum (?:context|model) length (?:is|of) (\d+)|context window of (\d+)"
                        r"|available context size \((\d+)", re.I)
_TRANSIENT_STATUS = {408, 425, 429}
# A 5xx that says the request itself is invalid (llama-cpp-python's server answers 500 to a body its own
# pydantic model rejects): retrying the same body cannot help.
_INVALID_RE = re.compile(r"validation error", re.I)


class HTTPItemError(RuntimeError):
    """One request failed at the server: a 4xx other than context length, or a transient fault (429, 5xx,
    timeout, dropped connection) still there after the engine's retries. It fails that item only.
    ``status`` is the HTTP status (``None`` when no answer came), ``message`` the server's error text."""

    error_kind = "http_error"  # the row's error_kind (runtime/retry.py reads it)

    def __init__(self, status: int | None, message: str, *, attempts: int = 1):
        self.status, self.message, self.attempts = status, message, attempts
        # a 4xx is the request's own fault: asking again gives the same answer
        self.retryable = status is None or status == 429 or status >= 500
        what = f"HTTP {status}" if status is not None else "no HTTP answer"
        super().__init__(f"{what}: {message}" + (f" (after {attempts} attempts)" if attempts > 1 else ""))

    def __reduce__(self):  # crosses Ray (pickled) with its fields
        return (_rebuild_item_error, (self.status, self.message, self.attempts))


def _rebuild_item_error(status: int | None, message: str, attempts: int) -> HTTPItemError:
    return HTTPItemError(status, message, attempts=attempts)


class ContextLengthError(RuntimeError):
    """The server refused the prompt as longer than its window (``window`` parsed from its message if given)."""

    def __init__(self, message: str, window: int | None):
        self.message, self.window = message, window
        super().__init__(message)


@dataclass
class CallInfo:
    """How one successful call went: attempts made, seconds of the last attempt, seconds spent waiting."""

    attempts: int
    latency_s: float
    waited_s: float


class Backoff:
    """Capped exponential backoff with jitter: attempt k waits ``backoff_s * 2**(k-1)`` times a random factor in
    [0.5, 1], at least ``Retry-After`` when the server gave one, and at most ``backoff_max_s``."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None):
        self.base_s, self.max_s = base_s, max_s
        self._rng = rng or random.Random()

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        d = min(self.max_s, self.base_s * 2 ** min(attempt - 1, 30)) * self._rng.uniform(0.5, 1.0)
        if retry_after is not None:
            d = max(d, retry_after)
        return min(d, self.max_s)


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_message(resp: httpx.Response) -> str:
    """The server's error text: OpenAI's ``{"error": {"message"}}``, FastAPI's ``{"detail"}``, or the body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or body.get("detail") or body.get("message")
            code = err.get("code")
            if msg:
                return f"{msg} [{code}]" if isinstance(code, str) and code and code not in str(msg) else str(msg)
        elif isinstance(err, str):
            return err
    return json.dumps(body)[:500]


def context_window_in(message: str) -> int | None:
    m = _WINDOW_RE.search(message)
    return int(next(g for g in m.groups() if g)) if m else None


def is_context_length(status: int, message: str) -> bool:
    return 400 <= status < 500 and status not in _TRANSIENT_STATUS and bool(_CONTEXT_RE.search(message))


_INT64_MAX = 2**63 - 1


def usage_count(usage: Any, name: str) -> int | None:
    """``usage[name]`` when it is a token count (an integer from 0 to int64), else None."""
    v = usage.get(name) if isinstance(usage, dict) else None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _INT64_MAX else None


def message_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    raise ValueError(f"message content is a {type(content).__name__}")


class _Transient(Exception):
    def __init__(self, status: int | None, message: str, *, connect: bool = False, retry_after: float | None = None):
        self.status, self.message, self.connect, self.retry_after = status, message, connect, retry_after
        super().__init__(message)


def _check(resp: httpx.Response, server: str, key_env: str | None, secret: Secret | None = None) -> Any:
    """The JSON body of a 2xx answer; else raise what the status means (the server's words, redacted)."""
    if 200 <= resp.status_code < 300:
        try:
            return resp.json()
        except ValueError as e:
            raise HTTPItemError(resp.status_code, redact(f"the answer is not JSON ({e}): {resp.text[:200]!r}",
                                                         secret)) from None
    status, msg = resp.status_code, redact(error_message(resp), secret)
    if status in (401, 403):
        hint = f"check the API key in ${key_env}" if key_env else "the model has no api_key_env set"
        raise FatalEngineError(f"server {server} refused the request with HTTP {status} ({msg}): {hint}")
    if status in _TRANSIENT_STATUS or (status >= 500 and not _INVALID_RE.search(msg)):
        raise _Transient(status, msg, retry_after=retry_after_s(resp.headers.get("retry-after")))
    if is_context_length(status, msg):
        raise ContextLengthError(msg, context_window_in(msg))
    raise HTTPItemError(status, msg)


async def _send(client: httpx.AsyncClient, method: str, url: str, body: Any, headers: dict[str, str],
                deadline_s: float | None = None) -> httpx.Response:
    """One HTTP attempt, bounded as a whole by ``deadline_s`` (httpx's read timeout restarts with each byte:
    a server that trickles its answer would otherwise hold the request forever)."""
    try:
        return await asyncio.wait_for(client.request(method, url, json=body, headers=headers), deadline_s)
    except TimeoutError:
        raise _Transient(None, f"no complete answer within {deadline_s:g}s (openai.request_timeout_s)") from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as e:
        raise _Transient(None, f"{type(e).__name__}: {e}", connect=True) from None
    except httpx.TimeoutException as e:
        raise _Transient(None, f"{type(e).__name__} (openai.timeout_s): {e}") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as e:  # dropped mid-request: the server died or restarted
        raise _Transient(None, f"{type(e).__name__}: {e or 'connection dropped'}") from None


async def request_json(
    client: httpx.AsyncClient, method: str, url: str, body: Any, *, settings: OpenAISettings, server: str,
    headers: dict[str, str] | None = None, backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, secret: Secret | None = None,
) -> tuple[Any, CallInfo]:
    """Send one JSON request, retrying transient faults; the answer's JSON and how the call went. Every
    attempt has ``settings.request_timeout_s`` in all; ``secret`` is redacted from any text the server sends."""
    backoff = backoff or Backoff(settings.backoff_s, settings.backoff_max_s)
    t_first, waited, attempts = time.monotonic(), 0.0, 0
    last: _Transient | None = None
    while True:
        attempts += 1
        t0 = time.monotonic()
        try:
            resp = await _send(client, method, url, body, headers or {}, settings.request_timeout_s)
            return (_check(resp, server, settings.api_key_env, secret),
                    CallInfo(attempts, time.monotonic() - t0, waited))
        except _Transient as e:
            e.message = redact(e.message, secret)
            last = e
        if attempts > settings.max_retries:
            break
        d = backoff.delay(attempts, last.retry_after)
        waited += d
        await sleep(d)
    assert last is not None
    if last.connect:
        raise FatalEngineError(f"server {server} unreachable for {time.monotonic() - t_first:.0f}s after "
                               f"{attempts} attempts: {last.message}")
    raise HTTPItemError(last.status, last.message, attempts=attempts)
