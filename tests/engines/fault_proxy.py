"""A fault-injecting HTTP proxy for endpoint tests: the first requests get scripted failures, the rest go through.

``FaultProxy(upstream, faults=[429, 503, 503])`` answers the first request with 429 (and a
``Retry-After`` header), the next two with 503, then forwards every request to ``upstream``
unchanged and returns the upstream's answer. It counts what it saw (``requests``, ``forwarded``,
``injected``) so a test can prove how many HTTP attempts the client made. ``reject_field="x"`` answers
400 to any JSON body holding a top-level field ``x``, as a hosted API does with an argument it does not
know. ``spans`` holds when each forwarded request came in and when its answer went out (bench/endpoint.py
times a server with it). Standard library only.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from local_http import LocalHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
        "proxy-authenticate", "host", "content-length"}


class FaultProxy(LocalHTTPServer):
    """Run on 127.0.0.1 in a thread; use as a context manager. ``url`` is the proxy's root."""

    def __init__(self, upstream: str, faults: list[int] | None = None, retry_after: str | None = "1",
                 reject_field: str | None = None, upstream_timeout: float = 300.0):
        u = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = u.hostname or "127.0.0.1", u.port or 80
        self.faults = list(faults or [])
        self.retry_after = retry_after
        self.reject_field = reject_field
        self.bodies: list[dict] = []  # JSON bodies received, in order
        self.upstream_timeout = upstream_timeout
        self.requests = 0  # every request received
        self.forwarded = 0  # requests passed to the upstream
        self.injected: list[int] = []  # status codes answered without the upstream, in order
        self.paths: list[str] = []
        self.spans: list[tuple[float, float]] = []  # (received, answered) of each forwarded request
        super().__init__()

    def count(self, path: str = "/v1/chat/completions") -> int:
        """Requests received for ``path`` (faults included)."""
        with self._lock:
            return sum(p == path for p in self.paths)

    def _next_fault(self, path: str, body: bytes) -> int | None:
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            doc = {}
        with self._lock:
            self.requests += 1
            self.paths.append(path)
            self.bodies.append(doc)
            if self.reject_field and isinstance(doc, dict) and self.reject_field in doc:
                self.injected.append(400)
                return 400
            if self.faults:
                status = self.faults.pop(0)
                self.injected.append(status)
                return status
            self.forwarded += 1
            return None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                body = self._body()
                status = proxy._next_fault(self.path, body)
                if status is not None:
                    text = (f"Unrecognized request argument supplied: {proxy.reject_field}" if status == 400
                            else f"injected {status}")
                    msg = json.dumps({"error": {"message": text, "type": "invalid_request_error"}}).encode()
                    headers = [("Content-Type", "application/json")]
                    if status == 429 and proxy.retry_after is not None:
                        headers.append(("Retry-After", proxy.retry_after))
                    self._reply(status, msg, headers)
                    return
                t_in = time.time()
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                  timeout=proxy.upstream_timeout)
                try:
                    fwd = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    conn.request(self.command, self.path, body=body or None, headers=fwd)
                    resp = conn.getresponse()
                    data = resp.read()
                    headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
                    self._reply(resp.status, data, headers)
                    with proxy._lock:
                        proxy.spans.append((t_in, time.time()))
                except OSError as e:  # the upstream is down: a gateway error, as a real proxy answers
                    self._reply(502, json.dumps({"error": {"message": f"upstream: {e}"}}).encode(),
                                [("Content-Type", "application/json")])
                finally:
                    conn.close()

            do_GET = do_POST = _handle

        return Handler
