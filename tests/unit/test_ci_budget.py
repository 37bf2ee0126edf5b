"""The CI time budget is enforced, not hoped for: .ci/tiers.py warns past its warning limit naming the slowest
tests, fails past its failure limit even when every step passed, and stops at the first failing step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# a step that prints a --durations table the way pytest does, then takes a little over a second
FAKE = ("python3 -c \"import time; print('1.50s call     tests/a/test_x.py::test_slow'); "
        "print('0.25s setup    tests/a/test_x.py::test_slow'); print('0.10s call     tests/b/test_y.py::test_quick'); "
        "time.sleep(1.2)\"")


def _ci(steps, **limits) -> subprocess.CompletedProcess:
    env = {**os.environ, "LONGSWEEP_CI_STEPS": json.dumps(steps)}
    env.update({f"LONGSWEEP_CI_{k.upper()}_S": str(v) for k, v in limits.items()})
    return subprocess.run([sys.executable, str(ROOT / ".ci" / "tiers.py")], env=env, capture_output=True,
                          text=True, timeout=60)


def test_within_budget_prints_each_steps_time_and_passes():
    r = _ci([["make test", FAKE, 60], ["make test-slow", "true", 60]], warn=600, fail=900)
    assert r.returncode == 0, r.stdout
    assert "1.50s call" in r.stdout  # the step's own output is shown
    lines = r.stdout.splitlines()
    assert any(ln.startswith("make test ") and "budget 1.0 min" in ln and "exit 0" in ln for ln in lines), r.stdout
    assert any(ln.startswith("make test-slow") for ln in lines) and any(ln.startswith("total") for ln in lines)
    assert "WARNING" not in r.stdout and "FAILED" not in r.stdout


def test_over_the_warning_limit_names_the_slowest_tests_first():
    r = _ci([["make test", FAKE, 60]], warn=1, fail=900)
    assert r.returncode == 0, r.stdout
    warning = r.stdout[r.stdout.index("WARNING: CI took"):].splitlines()
    assert "tests/a/test_x.py::test_slow" in warning[1] and "1.8 s" in warning[1]  # setup + call
    assert "tests/b/test_y.py::test_quick" in warning[2]


def test_over_the_failure_limit_fails_although_every_step_passed():
    r = _ci([["make test", FAKE, 1]], warn=1, fail=1)
    assert r.returncode == 3, r.stdout
    assert "OVER ITS BUDGET" in r.stdout and "FAILED: CI took" in r.stdout and "over the limit" in r.stdout


def test_a_failing_step_stops_the_run_with_its_exit_code():
    r = _ci([["make test", "echo broken; exit 2", 60], ["make test-slow", "echo never-run", 60]], warn=600, fail=900)
    assert r.returncode == 2 and "FAILED: make test exited 2" in r.stdout
    assert "never-run" not in r.stdout
