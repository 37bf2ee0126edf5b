"""``longsweep reparse`` on a real review sweep (SmolLM2, local Ray, one injected engine failure): the parsed
columns follow the current parser, in place, without losing a row or a key; a write cut short leaves the
table as it was; the ``reviewers`` table is rebuilt from the answers."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from longsweep.config import WorkerPolicy
from longsweep.errors import SweepBusyError
from longsweep.jobs.review import ReviewJob
from longsweep.jobs.review.options import ReviewOptions
from longsweep.papers.formats import ParsedReview
from longsweep.papers.formats.generic_json import JsonFormat
from longsweep import reparse

from helpers import run_one

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
BODY = ("# {t}\n\n## Abstract\n\nWe study {t}. It is faster on two benchmarks.\n\n## Method\n\nA simple rule.\n\n"
        "## Results\n\nAccuracy rises by two points.\n")
FAILING = "beta/v1/run1/smollm2-135m"


def _cli(*argv: str) -> int:
    ap = argparse.ArgumentParser(prog="longsweep")
    reparse.add_parser(ap.add_subparsers(dest="cmd"))
    return reparse.run(ap.parse_args(["reparse", *argv]))


def _rows(sweep: Path, table: str = "reviews") -> dict[str, dict]:
    rows = pq.read_table(sweep / table).to_pylist()
    assert len(rows) == len({r["key"] for r in rows})
    return {r["key"]: r for r in rows}


def _files(sweep: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((sweep / "reviews").iterdir())}


@pytest.fixture(scope="module")
def real_sweep(ray_local, smollm, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reparse")
    for pid in ("alpha", "beta", "gamma"):
        (root / "papers" / pid).mkdir(parents=True)
        (root / "papers" / pid / "v1.md").write_text(BODY.format(t=f"topic {pid}"))
    opts = ReviewOptions(completion_reserve=128, repetition_penalty=1.3, temperature=0.7, versions=["v1"])
    job = ReviewJob(opts, root / "papers", policy=WorkerPolicy(fault_injection={FAILING: "raise"}))
    run_one(job, smollm.with_window(2048), root / "sweep", sweep_id="rp", batch_items=1)
    rows = _rows(root / "sweep")
    assert len(rows) == 3 and rows[FAILING]["error_kind"] == "engine_error" and rows[FAILING]["raw_content"] is None
    assert any(r["status"] == "ok" for r in rows.values()), [r["error"] for r in rows.values()]
    return root / "sweep"


@pytest.fixture
def sweep(real_sweep, tmp_path) -> Path:
    return Path(shutil.copytree(real_sweep, tmp_path / "sweep"))


def _broken(self, text):  # a parser with a bug: it finds no summary in any answer
    return ParsedReview(format=self.name, required=self.required, issues=["summary: missing (broken parser)"])


@pytest.mark.integration
def test_parser_change_and_fix_reparsed_in_place_nothing_lost(sweep, monkeypatch, capsys):
    before = _rows(sweep)
    ok = [k for k, r in before.items() if r["status"] == "ok"]
    assert _cli(str(sweep), "--dry-run") == 0
    assert "0 changed" in capsys.readouterr().out and _rows(sweep) == before  # today's parser: nothing to do

    monkeypatch.setattr(JsonFormat, "parse", _broken)
    files = _files(sweep)
    assert _cli(str(sweep), "--dry-run") == 0 and _files(sweep) == files
    assert _cli(str(sweep)) == 0
    assert f"ok -> unparseable: {len(ok)}" in capsys.readouterr().out
    broken = _rows(sweep)
    assert set(broken) == set(before)
    for k in ok:
        r = broken[k]
        assert r["status"] == "error" and r["error_kind"] == "unparseable_review" and "broken parser" in r["error"]
        assert r["summary"] is None and r["raw_content"] == before[k]["raw_content"]
        assert r["finished_at"] == before[k]["finished_at"]
    assert broken[FAILING] == before[FAILING]  # an engine error has no answer to read again
    assert not list((sweep / "reviews").glob(".*"))  # no temporary file left

    monkeypatch.undo()  # the parser is fixed
    assert _cli(str(sweep)) == 0
    assert f"unparseable -> ok: {len(ok)}" in capsys.readouterr().out
    assert _rows(sweep) == before  # every row as the sweep wrote it
    runs = json.loads((sweep / "manifest.json").read_text())["runs"]
    done = [r["reparse"] for r in runs if "reparse" in r]
    assert [d["now_unparseable"] for d in done] == [len(ok), 0] and [d["now_ok"] for d in done] == [0, len(ok)]
    assert not (sweep / "lease.json").exists()


@pytest.mark.integration
def test_a_reparse_cut_short_leaves_the_table_as_it_was(sweep, monkeypatch):
    monkeypatch.setattr(JsonFormat, "parse", _broken)
    files, calls = _files(sweep), []
    real_write = reparse._write
    answered = {f for f in (sweep / "reviews").glob("*.parquet")
                if any(v is not None for v in pq.read_table(f, columns=["raw_content"]).column(0).to_pylist())}
    fail_at = min(2, len(answered))  # the second new file fails (the first when only one file changes)

    def write_then_fail(t, tmp):
        calls.append(tmp)
        if len(calls) == fail_at:
            raise OSError(28, "No space left on device")
        real_write(t, tmp)

    monkeypatch.setattr(reparse, "_write", write_then_fail)
    with pytest.raises(OSError):
        reparse.reparse_sweep(sweep)
    assert len(calls) == fail_at and _files(sweep) == files  # new files written before it were removed


@pytest.mark.integration
def test_a_sweep_in_use_is_refused(sweep):
    from longsweep.store.lease import acquire
    lease = acquire(sweep, command="another run")
    try:
        with pytest.raises(SweepBusyError):
            _cli(str(sweep))
    finally:
        lease.release()


def test_cyclereviewer_answers_rebuild_the_reviewers_table(tmp_path):
    """Rows as a CycleReviewer sweep writes them, one marked unparseable by an older parser, and a stale
    reviewers file: the reparse makes it ok and writes four reviewer rows per review, tied by key and time."""
    from longsweep.jobs.review.record import REVIEWER_SCHEMA, reviewer_rows
    from longsweep.results import to_table
    text = (FIXTURES / "cyclereviewer_output.md").read_text()
    base = {"sweep_id": "s", "model": "cycle", "paper_id": "p", "version": "v1", "raw_content": text,
            "review_format": "cyclereviewer"}
    rows = [{**base, "key": "p/v1/run1/cycle", "item_key": "p/v1/run1/cycle", "run": 1, "status": "error",
             "error_kind": "unparseable_review", "error": "old parser", "finished_at": "2026-01-01T00:00:01+00:00"},
            {**base, "key": "p/v1/run2/cycle", "item_key": "p/v1/run2/cycle", "run": 2, "status": "ok",
             "finished_at": "2026-01-01T00:00:02+00:00", "summary": "x", "rating": 5}]
    sweep = tmp_path / "sweep"
    (sweep / "reviews").mkdir(parents=True)
    (sweep / "reviewers").mkdir()
    pq.write_table(to_table(rows, ReviewJob.schema()), sweep / "reviews" / "a.parquet")
    stale = reviewer_rows({**rows[0], "finished_at": "2025-01-01T00:00:00+00:00"}, [{"reviewer": 1, "rating": 1}])
    pq.write_table(to_table(stale, REVIEWER_SCHEMA), sweep / "reviewers" / "old.parquet")
    assert _cli(str(sweep)) == 0
    got = _rows(sweep)
    assert all(r["status"] == "ok" and r["error"] is None and r["n_reviewers"] == 4 for r in got.values())
    rv = pq.read_table(sweep / "reviewers").to_pylist()
    assert not (sweep / "reviewers" / "old.parquet").exists() and len(rv) == 8
    for r in rv:
        assert r["finished_at"] == got[r["key"]]["finished_at"] and r["status"] == "ok" and 1 <= r["rating"] <= 10
    assert sorted((r["key"], r["reviewer"]) for r in rv) == sorted((k, n) for k in got for n in (1, 2, 3, 4))
    assert _cli(str(sweep)) == 0 and pq.read_table(sweep / "reviewers").to_pylist() == rv  # idempotent
