"""``--retry-errors`` on a real review sweep (SmolLM2, local Ray): the keys whose row is an error run again
and their rows are replaced; every key keeps exactly one row, the replaced rows are kept outside the table
and the manifest records both attempts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longsweep.cli import main
from longsweep.config import WorkerPolicy
from longsweep.jobs.review import ReviewJob
from longsweep.jobs.review.options import ReviewOptions
from longsweep.store.retried import RETRIED

from helpers import run_one

BODY = ("# {t}\n\n## Abstract\n\nWe study {t}. It is faster on two benchmarks.\n\n## Method\n\nA simple rule.\n\n"
        "## Results\n\nAccuracy rises by two points.\n")
OPTS = dict(completion_reserve=128, repetition_penalty=1.3, temperature=0.7, versions=["v1"])
KEY = "{}/v1/run1/smollm2-135m"


def _papers(root: Path) -> Path:
    for pid in ("alpha", "beta", "gamma"):
        (root / pid).mkdir(parents=True)
        (root / pid / "v1.md").write_text(BODY.format(t=f"topic {pid}"))
    (root / "broken").mkdir()
    (root / "broken" / "v1.md").write_bytes(b"# Title\n\nbad \xff\xfe utf-8")  # a driver-side bad_utf8 row
    return root


def _table(where) -> pa.Table:
    """Every row of a table folder, local or in the bucket, not deduplicated."""
    from longsweep.store import loc, parquet_files, read_file
    return pa.concat_tables([read_file(f) for f in parquet_files(loc(where))], promote_options="default")


def _rows(out) -> dict[str, dict]:
    rows = _table(out / "reviews").to_pylist()
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "a key has two rows"
    return {r["key"]: r for r in rows}


def _retried(out) -> list[dict]:
    return [r["retried"] for r in json.loads((out / "manifest.json").read_text())["runs"] if "retried" in r]


@pytest.mark.integration
def test_retry_errors_replaces_error_rows_one_row_per_key(ray_local, smollm, tmp_path, s3):
    """In a sweep on object storage (the test S3 server): the rewrites of a retry are whole objects."""
    from longsweep.store import loc
    papers, out = _papers(tmp_path / "papers"), loc(s3.uri("retry/sweep"))
    spec = smollm.with_window(2048)
    failing = [KEY.format("alpha"), KEY.format("beta")]
    policy = WorkerPolicy(fault_injection={k: "raise" for k in failing})
    run_one(ReviewJob(ReviewOptions(**OPTS), papers, policy=policy), spec, out, sweep_id="first", batch_items=1)
    first = _rows(out)
    assert len(first) == 4
    assert all(first[k]["error_kind"] == "engine_error" for k in failing)
    assert first[KEY.format("broken")]["error_kind"] == "bad_utf8"
    gamma = first[KEY.format("gamma")]

    cfg = tmp_path / "review.yaml"
    cfg.write_text("completion_reserve: 128\nrepetition_penalty: 1.3\ntemperature: 0.7\n")
    cli = ["review", str(papers), "--model", "smollm2-135m", "--window", "2048", "--versions", "v1",
           "--actors", "1", "--batch-items", "1", "--config", str(cfg), "--out", out.uri]
    # only engine errors: the bad input stays as it was, the ok or unparseable key is not touched
    assert main(cli + ["--retry-errors", "engine_error"]) in (0, 1)
    second = _rows(out)
    assert set(second) == set(first)
    for k in failing:
        assert second[k]["error_kind"] != "engine_error" and second[k]["raw_content"], second[k]["error"]
        assert second[k]["finished_at"] > first[k]["finished_at"] and second[k]["sweep_id"] == "sweep"
    assert second[KEY.format("broken")] == first[KEY.format("broken")]
    assert second[KEY.format("gamma")] == gamma
    archived = _table(out / RETRIED / "reviews").to_pylist()
    assert sorted(r["key"] for r in archived) == sorted(failing)
    assert all(r["error_kind"] == "engine_error" and r["sweep_id"] == "first" for r in archived)
    (rec,) = _retried(out)
    assert rec["kinds"] == ["engine_error"] and rec["keys"] == 2 and rec["replaced"] == 2
    for a in rec["attempts"]:
        assert a["key"] in failing and a["first"]["error_kind"] == "engine_error"
        assert a["first"]["finished_at"] == first[a["key"]]["finished_at"]
        assert a["second"]["finished_at"] == second[a["key"]]["finished_at"]

    # every kind (the flag bare, after the papers folder): the driver-side row is written again and replaced
    assert main(cli + ["--retry-errors"]) in (0, 1)
    third = _rows(out)
    assert set(third) == set(first)
    assert third[KEY.format("broken")]["finished_at"] > first[KEY.format("broken")]["finished_at"]
    assert third[KEY.format("broken")]["error_kind"] == "bad_utf8"
    again = [k for k, r in second.items() if r["status"] != "ok"]  # what was still an error is run again
    assert all(third[k]["finished_at"] > second[k]["finished_at"] for k in again)
    assert all(third[k] == second[k] for k in second if k not in again)
    recs = _retried(out)
    assert len(recs) == 2 and recs[1]["kinds"] == "all" and recs[1]["replaced"] == len(again)
    archived = _table(out / RETRIED / "reviews").to_pylist()
    assert len(archived) == 2 + len(again)  # nothing lost: every replaced row is kept aside
    import pandas as pd
    assert len(pd.read_parquet(f"{out.path}/reviews", filesystem=out.fs)) == 4  # one row per key, read in place


@pytest.mark.integration
def test_retry_keeps_the_error_row_of_a_key_that_did_not_run_again(ray_local, smollm, tmp_path):
    """The error limit stops the rerun before the pool starts (the driver-side error row comes first): that row
    is replaced, the engine error's key never ran again and keeps its row; one row per key throughout."""
    from longsweep.runtime.error_limit import ErrorLimit
    papers, out = _papers(tmp_path / "papers"), tmp_path / "sweep"
    spec = smollm.with_window(2048)
    policy = WorkerPolicy(fault_injection={KEY.format("alpha"): "raise"})
    run_one(ReviewJob(ReviewOptions(**OPTS), papers, policy=policy), spec, out, sweep_id="first", batch_items=1)
    first = _rows(out)
    assert first[KEY.format("alpha")]["error_kind"] == "engine_error"
    job = ReviewJob(ReviewOptions(**OPTS, retry_errors=[]), papers)
    s = run_one(job, spec, out, sweep_id="again", batch_items=1, limit=ErrorLimit(max_errors=0))
    assert s.stopped and "max-errors" in s.stopped
    now = _rows(out)
    assert set(now) == set(first)
    assert now[KEY.format("alpha")] == first[KEY.format("alpha")]
    assert now[KEY.format("broken")]["sweep_id"] == "again"
    (rec,) = _retried(out)
    errors = [k for k, r in first.items() if r["status"] != "ok"]
    assert rec["keys"] == len(errors) and rec["replaced"] == 1 and rec["not_rerun"] == len(errors) - 1
    second = {a["key"]: a["second"] for a in rec["attempts"]}
    assert second[KEY.format("broken")]["sweep_id"] == "again" and second[KEY.format("alpha")] is None


def test_finish_prunes_the_reviewers_of_replaced_rows(tmp_path):
    """The reviewers table keeps only the reviewers of each key's current review row, each once."""
    from longsweep.jobs.base import Planned, WorkItem
    from longsweep.jobs.review.record import REVIEWER_SCHEMA, reviewer_rows
    from longsweep.results import to_table
    from longsweep.store.retried import begin_retry
    sweep, schema = tmp_path / "sweep", ReviewJob.schema()
    (sweep / "reviews").mkdir(parents=True)
    (sweep / "reviewers").mkdir()
    k1, k2, t0, t1 = "p/v1/run1/m", "p/v1/run2/m", "2026-01-01T00:00:01+00:00", "2026-01-01T00:05:00+00:00"
    old = [{"key": k1, "status": "error", "error_kind": "unparseable_review", "finished_at": t0, "run": 1},
           {"key": k2, "status": "ok", "finished_at": t0, "run": 2}]
    pq.write_table(to_table(old, schema), sweep / "reviews" / "a.parquet")
    rv = lambda row, n: reviewer_rows(row, [{"reviewer": i, "rating": 5} for i in range(1, n + 1)])  # noqa: E731
    orphan = {"key": "p/v1/run3/m", "finished_at": t0}  # a worker killed before its review row was written
    pq.write_table(to_table(rv(old[0], 2) + rv(old[1], 4) + rv(orphan, 1), REVIEWER_SCHEMA),
                   sweep / "reviewers" / "a.parquet")
    job = ReviewJob(ReviewOptions(retry_errors=["unparseable_review"]), tmp_path)
    planned = Planned([WorkItem(key=k, cost=1, payload={}) for k in (k1, k2, orphan["key"])])
    retry = begin_retry(job, sweep, planned, {k1: 1, k2: 1})
    assert retry.done == {k2: 1} and set(retry.first) == {k1}
    new = {"key": k1, "status": "ok", "finished_at": t1, "run": 1}  # the rerun, and a batch Ray ran twice
    pq.write_table(to_table([new], schema), sweep / "reviews" / "b.parquet")
    pq.write_table(to_table(rv(new, 4) + rv(old[1], 4), REVIEWER_SCHEMA), sweep / "reviewers" / "b.parquet")
    rec = retry.finish("s")
    assert rec["replaced"] == 1 and rec["attempts"][0]["second"]["finished_at"] == t1
    rows = pq.read_table(sweep / "reviews").to_pylist()
    assert sorted((r["key"], r["finished_at"]) for r in rows) == [(k1, t1), (k2, t0)]
    got = pq.read_table(sweep / "reviewers").to_pylist()
    assert sorted((r["key"], r["reviewer"], r["finished_at"]) for r in got) == sorted(
        [(k1, i, t1) for i in range(1, 5)] + [(k2, i, t0) for i in range(1, 5)])
    kept = pq.read_table(sweep / RETRIED / "reviewers").to_pylist()
    assert len(kept) == 2 + 4 + 1  # k1's old reviewers, k2's second copy, the orphan: set aside, not lost
    assert [r["key"] for r in pq.read_table(sweep / RETRIED / "reviews").to_pylist()] == [k1]
