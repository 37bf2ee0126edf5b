"""Loading sweep folders: only .parquet files, only ok rows, duplicates once, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_data import review, synthetic, write_table

from longsweep.analysis.tables import load, per_paper
from longsweep.errors import InputError


def test_load_reads_only_ok_rows_of_parquet_files(tmp_path):
    rows = synthetic(models=("alpha",), papers=3, runs=2)
    rows.append({**review("alpha", "P0", "v1", 9, rating=1), "status": "error"})
    write_table(tmp_path / "s" / "reviews", rows, n_files=3)
    (tmp_path / "s" / "reviews" / "part-9.parquet.partial").write_bytes(b"cut short")
    data = load([tmp_path / "s"])
    assert len(data.reviews) == 3 * 2 * 2 and set(data.reviews["status"]) == {"ok"}
    assert any("status != 'ok'" in n for n in data.notes)
    assert data.reviewers is None and data.sources == [str(tmp_path / "s")]


def test_load_accepts_several_sweeps_and_a_folder_of_sweeps_and_drops_duplicate_keys(tmp_path):
    rows = synthetic(models=("alpha",), papers=2, runs=1)
    write_table(tmp_path / "all" / "s1" / "reviews", rows)
    write_table(tmp_path / "all" / "s2" / "reviews", rows[:2])  # the same keys again
    write_table(tmp_path / "other" / "reviews", synthetic(models=("beta",), papers=2, runs=1))
    data = load([tmp_path / "all", tmp_path / "other"])
    assert len(data.reviews) == 8 and sorted(data.reviews["model"].unique()) == ["alpha", "beta"]
    assert any("2 duplicate key(s)" in n for n in data.notes)


def test_load_reads_the_reviewers_table(tmp_path):
    write_table(tmp_path / "s" / "reviews", synthetic(models=("cycle",), papers=2, runs=1))
    rv = [{**review("cycle", "P0", "v1", 0, rating=i + 3), "reviewer": i} for i in range(1, 5)]
    write_table(tmp_path / "s" / "reviewers", rv)
    data = load([tmp_path / "s"])
    assert sorted(data.reviewers["reviewer"]) == [1, 2, 3, 4]
    # a reviewers table without keys: every row counts (nothing to tell duplicates by)
    write_table(tmp_path / "t" / "reviews", synthetic(models=("cycle",), papers=2, runs=1))
    write_table(tmp_path / "t" / "reviewers", [{k: v for k, v in r.items() if k != "key"} for r in rv + rv[:1]])
    assert len(load([tmp_path / "t"]).reviewers) == 5


def test_unreadable_file_is_skipped_with_a_note(tmp_path):
    write_table(tmp_path / "s" / "reviews", synthetic(models=("alpha",), papers=2, runs=1), n_files=1)
    (tmp_path / "s" / "reviews" / "zz.parquet").write_bytes(b"PAR1 garbage")
    data = load([tmp_path / "s"])
    assert len(data.reviews) == 4 and any("zz.parquet: unreadable" in n for n in data.notes)
    assert (tmp_path / "s" / "reviews" / "zz.parquet").exists()  # read-only: nothing renamed


def test_bad_folders_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no reviews/ table"):
        load([tmp_path / "empty"])
    (tmp_path / "nofiles" / "reviews").mkdir(parents=True)
    (tmp_path / "nofiles" / "reviews" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no readable .parquet"):
        load([tmp_path / "nofiles"])
    write_table(tmp_path / "errs" / "reviews", [{**review("a", "P", "v1", 0, rating=3), "status": "error"}])
    with pytest.raises(InputError, match="no ok review rows"):
        load([tmp_path / "errs"])


def test_per_paper_averages_non_null_runs():
    df = pd.DataFrame([review("m", "P", "v1", 0, rating=4), review("m", "P", "v1", 1, rating=7),
                       review("m", "P", "v1", 2, rating=None), review("m", "Q", "v1", 0, rating=None)])
    df["rating"] = df["rating"].astype(float)
    pp = per_paper(df, "rating")
    assert pp.to_dict("records") == [{"model": "m", "paper_id": "P", "version": "v1", "value": 5.5, "n_runs": 2}]
