"""Run CI's steps in order, time each one, and enforce the time budget.

Each step is a shell command (by default: the set-up, then `make test`, a headless Chromium when there is none
(.ci/browser.sh), `make test-slow`, `make test-vllm`).
Its output goes to the terminal as it comes and is kept, so that the `--durations` tables pytest prints can be
read afterwards. At the end one line per step gives its wall time against its own budget; past the warning
limit (50 minutes by default) a warning names the slowest tests of the whole run, and past the failure limit
(70 minutes, 20 short of CI's hard limit) the run fails even when every test passed.

Environment (for the test of this logic and for a machine slower than CI's):
  LONGSWEEP_CI_WARN_S    total seconds past which a warning is printed (default 3000)
  LONGSWEEP_CI_FAIL_S    total seconds past which the run fails (default 4200)
  LONGSWEEP_CI_STEPS     JSON list of [name, command, budget_s] replacing the default steps
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

STEPS = [
    ("setup", "make setup setup-vllm hf-model tiny-vlm", 900),
    ("make test", "make test", 900),
    ("browser", "bash .ci/browser.sh", 300),  # Debian's chromium for the report's browser test, when missing
    ("make test-slow", "make test-slow", 900),
    ("make test-vllm", "make test-vllm", 1200),
]
# pytest's --durations lines: "12.34s call     tests/x/test_y.py::test_z[param]"
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s+(call|setup|teardown)\s+(\S+)")
EXIT_OVER_BUDGET = 3


def steps() -> list[tuple[str, str, float]]:
    raw = os.environ.get("LONGSWEEP_CI_STEPS")
    if not raw:
        return STEPS
    return [(str(n), str(c), float(b)) for n, c, b in json.loads(raw)]


def run_step(command: str) -> tuple[int, float, list[str]]:
    """Run one step, echoing its output; its exit code, wall seconds and output lines."""
    t0 = time.monotonic()
    proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", bufsize=1)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    rc = proc.wait()
    return rc, time.monotonic() - t0, lines


def slowest(lines: list[str], n: int = 10) -> list[tuple[float, str]]:
    """The n slowest tests named in pytest's --durations tables (setup + call + teardown of each test)."""
    per_test: dict[str, float] = {}
    for line in lines:
        m = DURATION.match(line)
        if m:
            per_test[m.group(3)] = per_test.get(m.group(3), 0.0) + float(m.group(1))
    return sorted(((s, t) for t, s in per_test.items()), reverse=True)[:n]


def minutes(s: float) -> str:
    return f"{s / 60:.1f} min ({s:.0f} s)"


def main() -> int:
    warn_s = float(os.environ.get("LONGSWEEP_CI_WARN_S", 3000))
    fail_s = float(os.environ.get("LONGSWEEP_CI_FAIL_S", 4200))
    results, all_lines, failed = [], [], None
    for name, command, budget in steps():
        print(f"==> {name}: {command}", flush=True)
        rc, wall, lines = run_step(command)
        results.append((name, wall, budget, rc))
        all_lines += lines
        if rc != 0:
            failed = (name, rc)
            break
    total = sum(wall for _, wall, _, _ in results)
    print("\n==> CI times")
    for name, wall, budget, rc in results:
        over = "  OVER ITS BUDGET" if wall > budget else ""
        print(f"{name:16s} {minutes(wall):>18s}  budget {minutes(budget)}  exit {rc}{over}")
    print(f"{'total':16s} {minutes(total):>18s}  warn past {minutes(warn_s)}, fail past {minutes(fail_s)}")
    if total > warn_s:
        print(f"WARNING: CI took {minutes(total)}, over {minutes(warn_s)}. The slowest tests:")
        for s, test in slowest(all_lines):
            print(f"  {s:8.1f} s  {test}")
    if failed:
        print(f"FAILED: {failed[0]} exited {failed[1]}")
        return failed[1]
    if total > fail_s:
        print(f"FAILED: CI took {minutes(total)}, over the limit of {minutes(fail_s)} "
              "(see docs/TESTING.md: a new property extends a shared sweep or replaces a test)")
        return EXIT_OVER_BUDGET
    return 0


if __name__ == "__main__":
    sys.exit(main())
