"""A misbehaving OpenAI-compatible server on 127.0.0.1: each request's last user message picks its case.

The message text holds ``case=<name>``; the cases are what real servers (or a hostile one) have been seen to
send: ``ok`` (a good answer), ``usage_str`` (usage counts that are not integers), ``usage_huge`` (999,999
completion tokens claimed), ``echo500`` (a 500 whose error text echoes the API key), ``echo_answer`` (the
key inside the answer text), ``trickle`` (one byte every ``trickle_s`` seconds), ``surrogate`` (an answer
with a JSON escape of a lone surrogate), ``too_long`` (a 400 context-length refusal in the server's words),
``short`` (the 4-character answer "A: 1"). A request without the right ``Authorization: Bearer <key>`` is
answered 401 with the key it got echoed, as some servers do. Standard library only.
"""

from __future__ import annotations

import json
import re
import time
from http.server import BaseHTTPRequestHandler

from local_http import LocalHTTPServer

CASE_RE = re.compile(r"case=(\w+)")
TOO_LONG = "This model's maximum context length is 512 tokens. However, you requested 900 tokens (hostile)."


class HostileServer(LocalHTTPServer):
    def __init__(self, key: str, *, trickle_s: float = 1.0):
        self.key, self.trickle_s = key, trickle_s
        self.seen: list[str] = []  # the case of each chat request, in order
        super().__init__()

    def count(self, case: str) -> int:
        with self._lock:
            return self.seen.count(case)

    def answer(self, case: str, body: dict) -> tuple[int, bytes]:
        """Status and body of a case (``trickle`` is sent by the handler)."""
        def chat(text: str, usage: dict | None = None) -> bytes:
            doc = {"id": "x", "object": "chat.completion", "model": "hostile",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop"}],
                   "usage": usage if usage is not None else {"prompt_tokens": 20, "completion_tokens": 6}}
            return json.dumps(doc).encode()  # ensure_ascii: a surrogate goes out as its \\uXXXX escape
        if case == "usage_str":
            return 200, chat("A fine answer about rivers.", {"prompt_tokens": "many", "completion_tokens": "12x"})
        if case == "usage_huge":
            return 200, chat("A fine answer about bees.", {"prompt_tokens": 20, "completion_tokens": 999_999})
        if case == "echo500":
            return 500, json.dumps({"error": {"message": f"internal error for key {self.key}"}}).encode()
        if case == "echo_answer":
            return 200, chat(f"Your key is {self.key}, isn't it?")
        if case == "surrogate":
            return 200, chat("broken \udafb answer")
        if case == "too_long":
            return 400, json.dumps({"error": {"message": TOO_LONG, "type": "invalid_request_error"}}).encode()
        if case == "short":
            return 200, chat("A: 1", {"prompt_tokens": 20, "completion_tokens": 3})
        return 200, chat("A fine answer.")

    def _handler(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # the model list echoes the key it got, as a careless server might
                got = self.headers.get("Authorization", "").removeprefix("Bearer ")
                self._send(200, json.dumps({"data": [{"id": "hostile"}, {"id": f"for-{got}"}]}).encode())

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {srv.key}":
                    got = auth.removeprefix("Bearer ")
                    msg = f"Incorrect API key provided: {got}. Expected {srv.key[:2]}..."
                    self._send(401, json.dumps({"error": {"message": msg}}).encode())
                    return
                user = [m for m in body.get("messages", []) if m.get("role") == "user"]
                m = CASE_RE.search(json.dumps(user[-1]["content"]) if user else "")
                case = m.group(1) if m else "ok"
                with srv._lock:
                    srv.seen.append(case)
                if case == "trickle":
                    self._trickle()
                    return
                self._send(*srv.answer(case, body))

            def _trickle(self) -> None:
                data = json.dumps({"choices": [{"message": {"content": "slow"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for b in data:
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(srv.trickle_s)
                except OSError:  # the client gave up: as it should
                    pass

        return Handler
