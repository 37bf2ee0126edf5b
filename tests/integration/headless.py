"""A real headless Chromium for the report page's tests: the DOM after its scripts ran, a screenshot, and
every request the page made (through the DevTools protocol, over aiohttp's websocket client).

Every run maps all host names to "not found" (``--host-resolver-rules``), so nothing leaves the machine
even if a page tried; whether it tried is what ``page_requests`` records.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND"]


def browser() -> str | None:
    """The path of a Chromium on this machine, or None."""
    return next((p for p in map(shutil.which, NAMES) if p), None)


def _run(exe: str, profile: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=timeout)


def dump_dom(exe: str, page: Path, profile: Path) -> str:
    """The page's DOM, serialized after its scripts ran (``--dump-dom``)."""
    r = _run(exe, profile, "--dump-dom", page.resolve().as_uri())
    assert r.returncode == 0 and "<body" in r.stdout, r.stderr[-2000:]
    return r.stdout


def screenshot(exe: str, page: Path, png: Path, profile: Path, size: str = "1200,1500") -> Path:
    r = _run(exe, profile, f"--screenshot={png}", f"--window-size={size}", "--hide-scrollbars",
             page.resolve().as_uri())
    assert r.returncode == 0 and png.is_file() and png.stat().st_size > 1000, r.stderr[-2000:]
    return png


async def _cdp_session(ws_url: str, page_url: str, settle_s: float, script: str | None) -> dict:
    import aiohttp
    port = re.search(r":(\d+)/", ws_url).group(1)
    seen: dict = {"requests": [], "sockets": [], "value": None}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
            target = next(t for t in await r.json() if t["type"] == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            async def call(i: int, method: str, **params) -> dict:
                await ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
                while True:
                    msg = json.loads((await ws.receive(timeout=30)).data)
                    _note(seen, msg)
                    if msg.get("id") == i:
                        return msg
            await call(1, "Network.enable")
            await call(2, "Page.enable")
            await call(3, "Page.navigate", url=page_url)
            while "loaded" not in seen:
                _note(seen, json.loads((await ws.receive(timeout=30)).data))
            if script:  # e.g. type into the filter box: what the page's own script does must stay local too
                seen["value"] = (await call(4, "Runtime.evaluate", expression=script, returnByValue=True)
                                 )["result"]["result"].get("value")
            end = asyncio.get_running_loop().time() + settle_s
            while (left := end - asyncio.get_running_loop().time()) > 0:
                try:
                    _note(seen, json.loads((await ws.receive(timeout=left)).data))
                except asyncio.TimeoutError:
                    break
    return seen


def _note(seen: dict, msg: dict) -> None:
    method = msg.get("method")
    if method == "Network.requestWillBeSent":
        seen["requests"].append(msg["params"]["request"]["url"])
    elif method == "Network.webSocketCreated":
        seen["sockets"].append(msg["params"]["url"])
    elif method == "Page.loadEventFired":
        seen["loaded"] = True


def page_requests(exe: str, page: Path, profile: Path, *, settle_s: float = 1.5,
                  script: str | None = None) -> dict:
    """Load the page in a DevTools session; ``requests``: the URL of every request the page issued (its
    document, scripts, styles, images, fetches) until ``settle_s`` after its load event (and after
    ``script``, evaluated in the page, whose value is ``value``); ``sockets``: websockets it opened."""
    proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ws_url = None
        for line in proc.stderr:
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                ws_url = m.group(1)
                break
        assert ws_url, "chromium printed no DevTools address"
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # drained: a full pipe would block it
        return asyncio.run(_cdp_session(ws_url, page.resolve().as_uri(), settle_s, script))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
