"""A default sweep prints longsweep's lines only: no Ray Data progress block, no deprecation warning, no
core worker line, no token-authentication notice (they go to Ray's session logs); ``--verbose`` is how to
see them. One real 2-prompt ``generate`` in its own process, as a user runs it (stderr is a pipe)."""

import re

import pytest

from clirun import cli, prompts

pytestmark = pytest.mark.slow

OURS = ("[longsweep] ", "ray: ")  # the progress / start lines, and the line saying which Ray is used
OUR_LOG = re.compile(r"^\S+ \S+ (WARNING|ERROR) longsweep\.")  # our own logger (a loaded machine: a retry)
RAY_MARKS = ("logging_progress", "RayDeprecationWarning", "core_worker", "authentication_token_setup",
             "streaming_executor", "does not have any available CPUs")


def test_a_default_generate_prints_only_our_lines(smollm, tmp_path):
    out = tmp_path / "out"
    r = cli("generate", prompts(tmp_path / "p.jsonl", 2), "--model", "smollm2-135m", "--address", "local",
            "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    foreign = [ln for ln in lines if not ln.startswith(OURS) and not OUR_LOG.match(ln)]
    assert not foreign, "\n".join(foreign[:20])
    assert not any(m in r.stderr for m in RAY_MARKS), r.stderr[-3000:]
    assert any(ln.startswith("[longsweep] rows 2/2") for ln in lines), r.stderr[-2000:]
    assert "ok: 2  errors: 0" in r.stdout and f"results: {out}" in r.stdout
