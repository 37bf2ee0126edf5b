"""The README's local-head commands, typed in the README's order against a real `ray start --head` here.

The commands come from the README's marked cluster section, so the test fails when the README drifts.
What the test adds to them, and why: free ports, a short temp dir and `--block` (this head must not
collide with another Ray on the machine, and stopping it must stop this head only: `ray stop` would stop
every Ray here); a sample paper folder and an output folder for `PAPERS_DIR` and `--out`; a smaller window
and the two versions, for time. HOME is a temporary folder, so `ray get-auth-token --generate` writes there.
"""

import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import free_port, stop_head

from longsweep.papers.samples import make_samples

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]
VENV_BIN = str(Path(sys.executable).parent)
README_ADDRESS = "http://127.0.0.1:8265"


def readme_blocks() -> list[list[str]]:
    """The bash blocks of the README's cluster section, one command per entry (continuations joined)."""
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("<!-- cluster -->", 1)[1].split("<!-- /cluster -->", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[ln.strip() for ln in b.replace("\\\n", " ").splitlines() if ln.strip()] for b in blocks]


def local_block() -> list[str]:
    (block,) = [b for b in readme_blocks() if any(c.startswith("ray start --head") for c in b)]
    return block


def _set_opt(argv: list[str], name: str, value: str) -> list[str]:
    """``--name value`` or ``--name=value`` in argv set to value; the option must be there."""
    for i, a in enumerate(argv):
        if a == name:
            return argv[:i + 1] + [value] + argv[i + 2:]
        if a.startswith(name + "="):
            return argv[:i] + [f"{name}={value}"] + argv[i + 1:]
    raise AssertionError(f"the README's command has no {name}: {shlex.join(argv)}")


def _opt(argv: list[str], name: str) -> str:
    for i, a in enumerate(argv):
        if a == name:
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    raise AssertionError(f"the README's command has no {name}: {shlex.join(argv)}")


def _bash(line: str, env: dict) -> dict:
    """Run a README line in bash (command substitution, exports) and return the environment after it."""
    out = subprocess.run(["bash", "-c", f"{line}\nenv -0"], env=env, cwd=PROJECT_ROOT, capture_output=True,
                         timeout=120)
    assert out.returncode == 0, f"{line}: {out.stderr.decode()[-2000:]}"
    pairs = [kv.split("=", 1) for kv in out.stdout.decode().split("\0") if "=" in kv]
    return dict(pairs)


class LocalHead:
    """Types the README's commands, with the test's additions named in the module docstring."""

    def __init__(self, tmp: Path):
        self.papers = make_samples(tmp / "papers", n_papers=1, hidden_in_first=False)
        self.cfg = tmp / "review.yaml"
        self.cfg.write_text("completion_reserve: 128\nrepetition_penalty: 1.3\n")
        self.out = tmp / "out"
        (tmp / "home").mkdir()
        self.port, self.dash = free_port(), free_port()
        self.address = f"http://127.0.0.1:{self.dash}"
        self.temp = Path(f"/tmp/lsjob-{secrets.token_hex(3)}")  # short: Ray's socket paths live under it
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # the README must set the token
        self.env = {**env, "HOME": str(tmp / "home"), "PATH": VENV_BIN + os.pathsep + env.get("PATH", "")}
        self.head = None
        self.submission_id = None

    def ray(self, argv: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
        argv = [str(Path(VENV_BIN) / "ray"), *argv[1:]]
        return subprocess.run(argv, env=self.env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)

    def start(self, argv: list[str]) -> None:
        assert "RAY_AUTH_TOKEN" in self.env and self.env.get("RAY_AUTH_MODE") == "token", \
            "the README starts the head before setting RAY_AUTH_MODE=token and RAY_AUTH_TOKEN"
        argv = _set_opt(argv, "--port", str(self.port))
        argv += ["--num-cpus", "2", "--node-ip-address", "127.0.0.1", "--dashboard-port", str(self.dash),
                 "--temp-dir", str(self.temp), "--dashboard-agent-listen-port", str(free_port()),
                 "--ray-client-server-port", str(free_port()), "--disable-usage-stats", "--block"]
        self.head = subprocess.Popen([str(Path(VENV_BIN) / "ray"), *argv[1:]], env=self.env, cwd=PROJECT_ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while self.ray(["ray", "job", "list", "--address", self.address], timeout=60).returncode != 0:
            assert self.head.poll() is None, "ray start --head exited"
            assert time.time() < deadline, "the head did not come up in 120 s"
            time.sleep(2)

    def submit(self, argv: list[str]) -> None:
        assert _opt(argv, "--address") == README_ADDRESS
        argv = _set_opt(argv, "--address", self.address)
        self.submission_id = _opt(argv, "--submission-id")
        job = argv[argv.index("--") + 1:]
        assert job[:2] == ["python", "jobs/review_sweep.py"] and "PAPERS_DIR" in job, job
        job = [str(self.papers) if a == "PAPERS_DIR" else a for a in _set_opt(job, "--out", str(self.out))]
        job += ["--window", "1024", "--versions", "v1,v2", "--config", str(self.cfg)]
        sub = self.ray(argv[:argv.index("--") + 1] + job, timeout=900)
        assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-3000:]

    def job_cmd(self, argv: list[str]) -> str:
        assert _opt(argv, "--address") == README_ADDRESS and self.submission_id in argv, argv
        res = self.ray(_set_opt(argv, "--address", self.address), timeout=60)
        assert res.returncode == 0, res.stderr[-2000:]
        return re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr)

    def stop(self) -> None:
        if self.head is not None:
            stop_head(self.head, self.temp)
            self.head = None


def test_readme_local_head_commands_run_in_order(tmp_path):
    local = LocalHead(tmp_path)
    typed, status, logs = [], "", ""
    try:
        for line in local_block():
            argv = shlex.split(line, comments=True)
            if argv[0] in (".", "source"):
                assert argv[1] == ".venv/bin/activate"  # the test's PATH starts with this environment's bin
                typed.append("activate")
            elif argv[:2] == ["ray", "start"]:
                local.start(argv)
                typed.append("start")
            elif argv[:3] == ["ray", "job", "submit"]:
                local.submit(argv)
                typed.append("submit")
            elif argv[:3] == ["ray", "job", "status"]:
                status = local.job_cmd(argv)
                typed.append("status")
            elif argv[:3] == ["ray", "job", "logs"]:
                logs = local.job_cmd(argv)
                typed.append("logs")
            elif argv[:2] == ["ray", "stop"]:
                local.stop()
                typed.append("stop")
            else:  # token and exports: run as typed
                local.env = _bash(line, local.env)
                typed.append(argv[0] if argv[0] == "export" else " ".join(argv[:2]))
    finally:
        local.stop()
    assert typed == ["activate", "ray get-auth-token", "export", "start", "submit", "status", "logs", "stop"], typed
    assert (tmp_path / "home" / ".ray" / "auth_token").read_text() == local.env["RAY_AUTH_TOKEN"]
    assert "SUCCEEDED" in status or f"Job '{local.submission_id}' succeeded" in status, status
    assert "connected to the" in logs  # the job used the running head, not an embedded Ray
    rows = pq.read_table(local.out / "reviews").to_pylist()
    assert sorted(r["key"] for r in rows) == ["sample-01/v1/run1/smollm2-135m", "sample-01/v2/run1/smollm2-135m"]
