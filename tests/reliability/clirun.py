"""Running the real ``longsweep`` driver in a subprocess, as a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    e = {**os.environ, "PYTHONUNBUFFERED": "1"}
    e.pop("RAY_ADDRESS", None)
    return e


def cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "longsweep.cli", *map(str, args)]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd(*args), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout)


def start(*args: str, log: Path) -> subprocess.Popen:
    """The driver in its own session (a terminal's process group), stderr to ``log``."""
    f = open(log, "w")
    return subprocess.Popen(cmd(*args), cwd=ROOT, env=env(), stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)


def prompts(path: Path, n: int, *, prefix: str = "q") -> Path:
    path.write_text("".join(json.dumps({"id": f"{prefix}{i:02d}", "prompt": f"Write one sentence about number {i}."})
                            + "\n" for i in range(n)))
    return path


def wait_for(pred, timeout: float, every: float = 0.25) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(every)
    return False


def parquet_count(d: Path) -> int:
    return len(list(d.glob("*.parquet"))) if d.is_dir() else 0


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text[-4000:]
    assert "KeyboardInterrupt" not in text, text[-4000:]
    assert "*** SIGTERM received" not in text and "*** Aborted" not in text, text[-4000:]


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""
