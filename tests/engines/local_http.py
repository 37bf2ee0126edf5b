"""A stdlib HTTP server on 127.0.0.1 in a thread, as a context manager: the part the endpoint tests' fake
servers share. A subclass gives ``_handler()`` (the request handler class) and its own state."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class LocalHTTPServer:
    def __init__(self):
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
