"""The review sweep end to end: real SmolLM2 in 2 actors on a local Ray, real and generated papers."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from longsweep.export import export_reviews
from longsweep.jobs.review.options import ReviewOptions
from longsweep.papers.samples import make_samples

from helpers import run_one
from longsweep.jobs.review import ReviewJob

pytestmark = pytest.mark.integration

REAL = ["papermage_short_2304.02623v1.pdf", "s2orc_naacl2018_literature_graph.pdf"]
OPTS = ReviewOptions(runs=2, completion_reserve=256, temperature=0.7, repetition_penalty=1.3)


@pytest.fixture(scope="module")
def papers(tmp_path_factory, papers_dir):
    root = tmp_path_factory.mktemp("papers")
    make_samples(root, n_papers=2)
    for name in REAL:  # real papers as v1, and a copy as v2
        d = root / Path(name).stem
        d.mkdir()
        shutil.copy(papers_dir / name, d / "v1.pdf")
        shutil.copy(papers_dir / name, d / "v2.pdf")
    return root


def test_review_sweep_real_papers_two_actors(ray_local, smollm, papers, tmp_path):
    spec = smollm.with_window(2048)
    opts = OPTS.model_copy(update={"versions": ["v1", "v2"]})
    s = run_one(ReviewJob(opts, papers), spec, tmp_path, sweep_id="rv", concurrency=(2, 2), batch_items=2)
    rows = pq.read_table(tmp_path / "reviews").to_pylist()
    keys = [r["key"] for r in rows]
    expected = {f"{p.name}/{v}/run{k}/smollm2-135m" for p in papers.iterdir() for v in ("v1", "v2") for k in (1, 2)}
    assert len(keys) == len(set(keys)) == 16 and set(keys) == expected
    assert s.rows == 16 and s.ok + s.errors == 16
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
    assert s.ok >= 6, [r["error"] for r in rows if r["error"]]
    hidden = [r for r in rows if r["paper_id"] == "sample-01" and r["version"] == "v1"]
    assert all(r["hidden_text"] for r in hidden)
    # run 2 of a paper reuses the KV prefix of run 1 when the same actor serves both
    assert any((r["cached_tokens"] or 0) > 100 for r in rows)

    # readers users use
    import duckdb
    import pandas as pd
    import polars as pl
    assert len(pd.read_parquet(tmp_path / "reviews")) == 16
    assert pl.read_parquet(str(tmp_path / "reviews" / "*.parquet")).height == 16
    n = duckdb.sql(f"select count(distinct key) from read_parquet('{tmp_path}/reviews/*.parquet')").fetchall()[0][0]
    assert n == 16

    # the review seed's layout
    out = tmp_path / "export"
    written = export_reviews(tmp_path, out)
    assert written == s.ok
    some = next(out.glob("*/v1_review_run1.json"), None) or next(out.glob("*/*_review_run*.json"))
    import json
    obj = json.loads(some.read_text())
    assert {"paper_id", "version", "run_id", "model_type", "was_truncated", "rating"} <= set(obj)


@pytest.mark.slow
def test_killed_sweep_resumes_only_missing_keys(papers, tmp_path):
    """SIGKILL the CLI part way, rerun with --resume: only missing keys run, nothing written is rewritten."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "longsweep.cli", "review", str(papers), "--model", "smollm2-135m",
           "--window", "1024", "--runs", "1", "--versions", "v1", "--actors", "1", "--batch-items", "1",
           "--out", str(out)]
    env_cfg = tmp_path / "review.yaml"
    env_cfg.write_text("completion_reserve: 96\nrepetition_penalty: 1.3\ntemperature: 0.7\n")
    cmd += ["--config", str(env_cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
            # the first file written by a worker (files of driver-side error rows start with "driver_")
            if any(not p.name.startswith("driver_") for p in (out / "reviews").glob("*.parquet")):
                break
    finally:
        if proc.poll() is None:
            import os
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "reviews").glob("*.parquet")}
    done_before = {r["key"] for r in pq.read_table(out / "reviews").to_pylist()}
    assert 0 < len(done_before) < 4, "the kill should land part way through"
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=900)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    assert f"{len(done_before)} already done" in res.stdout
    rows = pq.read_table(out / "reviews").to_pylist()
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 4
    for name, mtime in before.items():  # nothing written before was rewritten
        assert (out / "reviews" / name).stat().st_mtime_ns == mtime
