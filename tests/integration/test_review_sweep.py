"""The review sweep end to end: real SmolLM2 in 2 actors on a local Ray, real and generated papers (the
shared sweep of tests/shared_sweeps.py); a killed CLI driver resumed (slow tier)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from longsweep.reporting.export_seed import export_reviews
from longsweep.papers.samples import make_samples

pytestmark = pytest.mark.integration


def test_review_sweep_real_papers_two_actors(shared_sweep, shared_papers):
    """The shared review sweep (tests/shared_sweeps.py): 2 actors, real and generated papers, all cut."""
    rows = pq.read_table(shared_sweep / "reviews").to_pylist()
    keys = [r["key"] for r in rows]
    expected = {f"{p.name}/{v}/run{k}/smollm2-135m" for p in shared_papers.iterdir() for v in ("v1", "v2")
                for k in (1, 2)}
    assert len(keys) == len(set(keys)) == 12 and set(keys) == expected
    (counts,) = [r["counts"] for r in json.loads((shared_sweep / "manifest.json").read_text())["runs"]
                 if r.get("job") == "review" and "counts" in r]
    assert counts["rows"] == 12 and counts["ok"] == sum(r["status"] == "ok" for r in rows)
    for r in rows:
        assert r["was_truncated"] and r["truncation_stages"] and r["tokens_fitted"] <= r["budget_tokens"]
        assert r["tokens_full"] > r["tokens_fitted"] and r["tokens_exact"]
        assert r["seed"] == r["run"]  # base seed 0 + run
        if r["status"] == "ok":
            assert r["summary"] and 1 <= r["rating"] <= 10
            assert all(r[k] is None or 1 <= r[k] <= 4 for k in ("soundness", "presentation", "contribution"))
            assert r["raw_content"] and isinstance(r["parse_issues"], list)
        else:  # errors are explained and keep what the model wrote
            assert r["error"] and r["error_kind"] and r["attempts"] >= 1
    assert counts["ok"] >= 4, [r["error"] for r in rows if r["error"]]
    hidden = [r for r in rows if r["paper_id"] == "sample-01" and r["version"] == "v1"]
    assert hidden and all(r["hidden_text"] for r in hidden)
    # run 2 of a paper reuses the KV prefix of run 1 when the same actor serves both
    assert any((r["cached_tokens"] or 0) > 100 for r in rows)

    # readers users use
    import duckdb
    import pandas as pd
    import polars as pl
    assert len(pd.read_parquet(shared_sweep / "reviews")) == 12
    assert pl.read_parquet(str(shared_sweep / "reviews" / "*.parquet")).height == 12
    n = duckdb.sql(f"select count(distinct key) from read_parquet('{shared_sweep}/reviews/*.parquet')").fetchall()[0][0]
    assert n == 12


def test_export_of_the_shared_sweep_writes_one_seed_file_per_ok_review(shared_sweep, tmp_path):
    """The review seed's layout from real rows (tests/papers/test_export.py covers the formats and the seed's
    own readers on hand-made rows)."""
    out = tmp_path / "export"
    written = export_reviews(shared_sweep, out)
    assert written == sum(r["status"] == "ok" for r in pq.read_table(shared_sweep / "reviews").to_pylist())
    some = next(out.glob("*/v1_review_run1.json"), None) or next(out.glob("*/*_review_run*.json"))
    obj = json.loads(some.read_text())
    assert {"paper_id", "version", "run_id", "model_type", "was_truncated", "rating"} <= set(obj)


@pytest.fixture
def papers(tmp_path):
    """Three generated papers (v1 is all the killed sweep reads)."""
    return make_samples(tmp_path / "papers", n_papers=3)


@pytest.mark.slow
def test_killed_sweep_resumes_only_missing_keys(papers, tmp_path, s3):
    """SIGKILL the CLI part way through a sweep into object storage (the test S3 server; the credentials in
    the environment, as a user exports them), rerun with --resume: the dead driver's lease is taken over,
    only missing keys run, nothing written is rewritten."""
    from longsweep.store import loc, read_table
    out = loc(s3.uri(f"killed/{tmp_path.name}"))
    cmd = [sys.executable, "-m", "longsweep.cli", "review", str(papers), "--model", "smollm2-135m",
           "--window", "1024", "--runs", "1", "--versions", "v1", "--actors", "1", "--batch-items", "1",
           "--out", out.uri]
    env_cfg = tmp_path / "review.yaml"
    # one attempt per review: the property is the resume, not review quality
    env_cfg.write_text("completion_reserve: 96\nrepetition_penalty: 1.3\ntemperature: 0.7\nmax_retries: 0\n")
    cmd += ["--config", str(env_cfg)]
    reviews = out / "reviews"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
            # the first file written by a worker (files of driver-side error rows start with "driver_")
            if any(not p.name.startswith("driver_") for p in reviews.files(".parquet")):
                break
    finally:
        if proc.poll() is None:
            import os
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {p.name: p.read_bytes() for p in reviews.files(".parquet")}
    done_before = set(read_table(reviews).column("key").to_pylist())
    assert 0 < len(done_before) < 3, "the kill should land part way through"
    assert (out / "lease.json").exists(), "the killed driver's lease is still there"
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=900)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    assert f"{len(done_before)} already done" in res.stdout
    keys = read_table(reviews).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == 3
    for name, data in before.items():  # nothing written before was rewritten
        assert (reviews / name).read_bytes() == data
