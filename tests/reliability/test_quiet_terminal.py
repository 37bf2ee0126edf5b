"""A default sweep prints longsweep's lines only: no Ray Data progress block, no deprecation warning, no
core worker line, no token-authentication notice (they go to Ray's session logs); ``--verbose`` is how to
see them. One real 4-prompt ``generate`` in its own process, as a user runs it in a terminal: stderr is a
pty, so the progress is a live bar (redrawn in place) and every line on the terminal is one of ours."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading

import pytest

from clirun import ROOT, cmd, env, prompts

pytestmark = pytest.mark.slow

OURS = ("[longsweep] ", "ray: ")  # the progress / start lines, and the line saying which Ray is used
OUR_LOG = re.compile(r"^\S+ \S+ (WARNING|ERROR) longsweep\.")  # our own logger (a loaded machine: a retry)
RAY_MARKS = ("logging_progress", "RayDeprecationWarning", "core_worker", "authentication_token_setup",
             "streaming_executor", "does not have any available CPUs")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _on_a_terminal(*args, timeout: float = 600) -> tuple[int, str, str]:
    """The CLI with stderr on a pty of 120 columns (stdout a pipe): exit code, the terminal's bytes, stdout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the last writer closed the pty
                return
            if not data:
                return
            chunks.append(data)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.Popen(cmd(*args), cwd=ROOT, env={**env(), "TERM": "xterm"}, stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, text=True)
    os.close(slave)
    out, _ = proc.communicate(timeout=timeout)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace"), out


def test_a_default_generate_prints_only_our_lines_and_a_live_bar(smollm, tmp_path):
    out = tmp_path / "out"
    code, term, stdout = _on_a_terminal("generate", prompts(tmp_path / "p.jsonl", 4), "--model", "smollm2-135m",
                                        "--address", "local", "--out", out)
    assert code == 0, term[-3000:]
    # what a reader sees: the bar's redraws (carriage returns, cursor moves) split into the states drawn
    lines = [ln.strip() for ln in re.split(r"[\r\n]", ANSI.sub("", term)) if ln.strip()]
    foreign = [ln for ln in lines if not ln.startswith(OURS) and not OUR_LOG.match(ln)]
    assert not foreign, "\n".join(foreign[:20])
    assert not any(m in term for m in RAY_MARKS), term[-3000:]
    bars = [ln for ln in lines if re.match(r"\[longsweep\] smollm2-135m .*\d/4 \[", ln)]
    assert bars and "\r" in term, term[-3000:]  # the live bar, redrawn in place
    assert sum(ln.startswith("[longsweep] rows ") for ln in lines) == 1  # the plain line: once, at the end
    assert any(ln.startswith("[longsweep] rows 4/4") for ln in lines), term[-2000:]
    assert "ok: 4  errors: 0" in stdout and f"results: {out}" in stdout
