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


def _done_rows(table_dir, ids: list[str], model: str = "smollm2-135m") -> None:
    """Rows of ``ids`` as an earlier run of `echo` left them, in the table's schema (one Parquet file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from longsweep.jobs.echo import EchoJob
    n, keys = len(ids), [f"{i}/{model}" for i in ids]
    cols = {"key": keys, "item_key": keys, "id": ids, "sweep_id": ["earlier"] * n, "model": [model] * n,
            "backend": ["llama_cpp"] * n, "status": ["ok"] * n, "attempts": [0] * n, "resets": [0] * n,
            "prompt_tokens": [20] * n, "finished_at": ["2025-01-01T00:00:00+00:00"] * n}
    schema = EchoJob.schema()
    table_dir.mkdir(parents=True)
    pq.write_table(pa.table({f.name: pa.array(cols[f.name], f.type) if f.name in cols else pa.nulls(n, f.type)
                             for f in schema}, schema=schema), table_dir / "earlier.parquet")


@pytest.mark.slow
def test_100000_prompts_streamed_resume_runs_only_the_missing_keys_and_a_bad_line_is_its_own_row(smollm, tmp_path,
                                                                                               monkeypatch):
    """Issue 27: a prompts file streamed (never a list of every prompt in the driver), resumed by an anti-join
    of key hashes: of 100,000 lines, 98,999 already have rows; the 1,000 missing ones and one bad line run.
    The scan and the anti-join run in child processes, as for a file over 32 MB (runtime/stream_scan.py)."""
    import json
    from clirun import cli
    monkeypatch.setenv("LONGSWEEP_SCAN_CHILD_BYTES", "0")
    monkeypatch.setenv("LONGSWEEP_CACHE_DIR", str(tmp_path / "scans"))
    ids = [f"p{i:06d}" for i in range(100_000)]
    bad = 50_000  # its line is refused on its own: the id stays, the row is an error naming line and field
    lines = [json.dumps({"id": pid, "prompt": f"Say {i}."} if i != bad else
                        {"id": pid, "prompt": "hi", "temperature": "0.7x"}) for i, pid in enumerate(ids)]
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(lines) + "\n")
    missing = {pid for i, pid in enumerate(ids) if i % 100 == 7}
    out = tmp_path / "out"
    _done_rows(out / "echoes", [pid for i, pid in enumerate(ids) if pid not in missing and i != bad])
    r = cli("echo", f, "--model", "smollm2-135m", "--out", out, timeout=300)
    no_traceback(r.stderr)
    assert r.returncode == ExitCode.ITEM_ERRORS, r.stderr[-3000:]
    assert "items: 100000 (98999 already done, 1001 run now)" in r.stdout, r.stdout
    rows = pd.read_parquet(out / "echoes")
    assert len(rows) == 100_000 and rows["key"].is_unique and set(rows["id"]) == set(ids)
    new = rows[rows["sweep_id"] != "earlier"]
    assert set(new["id"]) == missing | {ids[bad]}  # exactly what was missing ran
    (row,) = new[new["id"] == ids[bad]].to_dict("records")
    assert (row["status"], row["error_kind"], row["error"]) == \
        ("error", "bad_input", f"p.jsonl:{bad + 1}: temperature: expected a number (got '0.7x')")
    assert (new[new["id"] != ids[bad]]["status"] == "ok").all() and new["prompt_tokens"].min() > 0
