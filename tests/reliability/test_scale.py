"""Scale (issue 15.9): `stories one.yaml --runs 100000` printed nothing for 164 s and then wrote one Parquet
file per row. A plan that long speaks at once and starts its actor pool soon; a story table ends in few files."""

import os
import signal
import time

import pandas as pd
import pytest
from clirun import no_traceback, start, wait_for

from longsweep.errors import ExitCode
from longsweep.store import parquet_files

pytestmark = pytest.mark.integration

ONE = "sequences:\n  - id: one\n    prompts:\n      - {name: a, text: \"Write one short sentence.\"}\n" \
      "      - {name: b, text: \"Continue with one more.\"}\n"


@pytest.mark.slow
def test_100000_story_runs_speak_at_once_and_start_within_30s(smollm, tmp_path):
    seq = tmp_path / "one.yaml"
    seq.write_text(ONE)
    log = tmp_path / "driver.log"
    t0 = time.monotonic()
    proc = start("stories", seq, "--model", "smollm2-135m", "--runs", "100000", "--max-tokens", "4",
                 "--out", tmp_path / "out", log=log)
    seen: dict[str, float] = {}

    def mark():
        text = log.read_text()
        for what, needle in (("first", "[longsweep] "), ("ray", "ray: "), ("pool", "[longsweep] rows ")):
            if needle in text and what not in seen:
                seen[what] = time.monotonic() - t0
        return "pool" in seen or proc.poll() is not None

    try:
        wait_for(mark, 600, every=0.1)
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    no_traceback(text)
    assert rc == ExitCode.INTERRUPTED, text[-3000:]
    assert seen.get("first", 99) <= 5, f"nothing printed for {seen.get('first')} s"
    # planning 100,000 runs (items, batches, the dataset) from the moment Ray is up to the actor pool
    assert "pool" in seen and seen["pool"] - seen["ray"] <= 30, (seen, text[-2000:])


def test_a_story_table_of_many_runs_is_compacted_into_few_files(ray_local, smollm, tmp_path, capsys):
    from longsweep.cli import main
    seq = tmp_path / "one.yaml"
    seq.write_text(ONE)
    out = tmp_path / "out"
    args = ["stories", str(seq), "--model", "smollm2-135m", "--runs", "24", "--max-tokens", "4", "--out", str(out)]
    code = main(args)
    first = capsys.readouterr()
    assert code in (ExitCode.OK, ExitCode.ITEM_ERRORS), first.err[-3000:]
    assert "files compacted into 1" in first.err, first.err[-3000:]
    assert len(parquet_files(out / "stories")) == 1
    rows = pd.read_parquet(out / "stories")
    assert rows["key"].is_unique and len(rows) == 48
    assert main(args) == code
    again = capsys.readouterr()
    assert "items: 24 (24 already done, 0 run now)" in again.out, again.out
    assert len(parquet_files(out / "stories")) == 1
