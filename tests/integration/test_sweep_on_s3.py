"""A review sweep and a story sweep written to object storage (the shared sweep, tests/shared_sweeps.py, has
``--out s3://...`` on a real S3-compatible server on 127.0.0.1), then every command that reads or rewrites a
sweep pointed at the URI: report, compare, export, reparse, and a second writer refused (--retry-errors into
the bucket: tests/jobs/test_review_retry.py)."""

import json

import pyarrow.fs as pafs

from longsweep.cli import main
from longsweep.store import lease, loc, parquet_files, read_table

from shared_sweeps import SHARED_PREFIX


def _copy(s3, prefix: str) -> str:
    """A copy of the shared sweep's prefix in the bucket (a test that rewrites must not touch the original)."""
    src, dst = loc(s3.uri(SHARED_PREFIX)), loc(s3.uri(prefix))
    pafs.copy_files(src.path, dst.path, source_filesystem=src.fs, destination_filesystem=dst.fs)
    return dst.uri


def test_rows_land_in_the_bucket_each_key_once_and_no_object_holds_a_credential(shared_sweep, s3):
    uri = loc(s3.uri(SHARED_PREFIX))
    reviews, stories = read_table(uri / "reviews"), read_table(uri / "stories")
    assert reviews.num_rows == 12 and len(set(reviews.column("key").to_pylist())) == 12  # 3 papers x 2 x 2
    assert stories.num_rows == 6 and len(set(stories.column("key").to_pylist())) == 6  # 2 x 3 turns
    assert [f for f in parquet_files(uri / "stories") if f.name.startswith("w_")], "turns come from worker sinks"
    objects = s3.objects("")
    assert not [k for k in objects if k.endswith(".tmp") or "/lease.json" in k]  # no temporaries, lease released
    for secret in (s3.access_key, s3.secret_key):
        holders = [k for k, body in objects.items() if secret.encode() in body]
        assert not holders, f"a credential is stored in {holders}"
    manifest = json.loads(objects[f"{SHARED_PREFIX}/manifest.json"])
    assert manifest["latest"]["counts"]["rows"] == 6 and manifest["job"] == "stories"


def test_report_compare_and_export_read_the_uri(shared_sweep, s3, tmp_path, capsys):
    uri = s3.uri(SHARED_PREFIX)
    assert main(["report", uri, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["reviews"]["counts"]["rows"] == 12 and rep["stories"]["counts"]["rows"] == 6
    assert main(["compare", uri, "--base", "v1", "--revised", "v2"]) == 0
    assert "v1" in capsys.readouterr().out
    ok = sum(r == "ok" for r in read_table(loc(uri) / "reviews").column("status").to_pylist())
    assert main(["export", uri, "--to", str(tmp_path / "seed")]) == 0
    assert f"wrote {ok} review files" in capsys.readouterr().out


def test_reparse_rewrites_the_bucket_in_place_and_keeps_each_key_once(shared_sweep, s3, capsys):
    """(--retry-errors on a sweep in the bucket: tests/jobs/test_review_retry.py.)"""
    uri = loc(_copy(s3, "shared/reparsed"))
    before = {f.name for f in parquet_files(uri / "reviews")}
    assert main(["reparse", uri.uri]) == 0
    assert "of 12 rows reparsed" in capsys.readouterr().out
    after = read_table(uri / "reviews")
    assert after.num_rows == 12 and len(set(after.column("key").to_pylist())) == 12
    assert {f.name for f in parquet_files(uri / "reviews")} == before  # rewritten under the same names
    assert not [k for k in s3.objects("shared/reparsed/") if ".tmp" in k or "/lease.json" in k]
    assert json.loads((uri / "manifest.json").read_text())["runs"][-1]["reparse"]["rows"] == 12


def test_a_second_writer_into_the_same_uri_is_refused(shared_sweep, s3, tmp_path, capsys):
    uri = _copy(s3, "shared/busy")
    held = lease.acquire(uri, command="the first run")
    try:
        prompts = tmp_path / "p.jsonl"
        prompts.write_text('{"id": "a", "prompt": "hi"}\n')
        assert main(["echo", str(prompts), "--model", "smollm2-135m", "--out", uri]) == 2
        assert "in use by another run" in capsys.readouterr().err
    finally:
        held.release()
