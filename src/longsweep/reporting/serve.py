"""``longsweep view RESULTS``: the HTML report served on 127.0.0.1, built again on a request when its files
changed.

A reload shows the rows a sweep still running has written since (a reload with nothing new returns the page
already built). The stdlib's threading HTTP server runs in
a thread; the main thread waits for Ctrl-C, then shuts the server down and lets the CLI say ``interrupted``
(exit 130). Only ``/`` (and ``/index.html``) is served; the page itself loads nothing.
"""

from __future__ import annotations

import html
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from longsweep.store import Loc, loc

logger = logging.getLogger(__name__)


def signature(folders: list[Loc]) -> tuple:
    """What the page is built from: every Parquet file and manifest under the folders (a local folder or an
    object-store URI), with size and time."""
    out = []
    for d in folders:
        for pattern in ("*.json", "*/*.json", "*/*.parquet", "*/*/*.json", "*/*/*.parquet"):
            for f in d.glob(pattern):
                try:
                    st = f.info()
                except OSError:
                    continue
                out.append((str(f), st.size, st.mtime_ns))
    return tuple(sorted(out))


class Pages:
    """The page, built again when the files it is built from changed since the last request."""

    def __init__(self, results_dir: Loc, kw: dict[str, Any]):
        self.root, self.kw = results_dir, kw
        self.lock = threading.Lock()
        self.sig: tuple | None = None
        self.body = b""

    def get(self) -> bytes:
        from longsweep.reporting.page import build_html, find_judged, source_of
        with self.lock:  # one build at a time; a reload during a build waits for it
            folders = [self.root, *map(loc, self.kw.get("judged") or []), *find_judged(self.root),
                       *source_of(self.root)]
            sig = signature(folders)
            if sig != self.sig:
                self.body, self.sig = build_html(self.root, **self.kw).encode("utf-8"), sig
            return self.body


def _handler(pages: Pages) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path.split("?")[0] not in ("/", "/index.html"):
                self._send(404, "text/plain; charset=utf-8", b"not found")
                return
            try:
                self._send(200, "text/html; charset=utf-8", pages.get())
            except Exception as e:  # noqa: BLE001 - shown in the page, the server goes on
                logger.warning("view: %s: %s", pages.root, e)
                msg = f"<!DOCTYPE html><p>could not build the page: {html.escape(f'{type(e).__name__}: {e}')}</p>"
                self._send(500, "text/html; charset=utf-8", msg.encode("utf-8"))

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            logger.info("view: " + format, *args)
    return Handler


def make_server(results_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0, **kw: Any) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (0: a free port, read it from ``server.server_address``)."""
    pages = Pages(loc(results_dir), kw)
    srv = ThreadingHTTPServer((host, port), _handler(pages))
    srv.daemon_threads = True
    srv.pages = pages  # type: ignore[attr-defined]
    return srv


def serve(results_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0, **kw: Any) -> int:
    """Check the folder once (a bad one: ``InputError``, exit 2), then serve until Ctrl-C."""
    from longsweep.errors import InputError
    srv = make_server(results_dir, host=host, port=port, **kw)
    try:
        srv.pages.get()  # type: ignore[attr-defined]  the first build, before the address is printed
    except FileNotFoundError as e:
        srv.server_close()
        raise InputError(str(e)) from None
    except BaseException:
        srv.server_close()
        raise
    t = threading.Thread(target=srv.serve_forever, name="longsweep-view", daemon=True)
    t.start()
    h, p = srv.server_address[:2]
    print(f"view: http://{h}:{p}/  (a reload shows what the sweep wrote since; Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        while t.is_alive():
            t.join(0.5)
    finally:
        srv.shutdown()
        srv.server_close()
    return 0
