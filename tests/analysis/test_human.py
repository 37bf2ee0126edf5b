"""AI vs human scores: errors and correlations against numpy / scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from analysis_data import review
from scipy import stats

from longsweep.analysis.human import compare_human, error_stats, load_human
from longsweep.errors import InputError


def test_error_stats_match_numpy_and_scipy():
    ai = np.array([3.0, 2.5, 4.0, 1.5, 3.5, 2.0])
    hu = np.array([2.5, 2.0, 3.5, 2.5, 3.0, 1.0])
    row = error_stats(ai, hu)
    assert row["n"] == 6
    assert row["mse"] == pytest.approx(np.mean((ai - hu) ** 2))
    assert row["mae"] == pytest.approx(np.mean(np.abs(ai - hu)))
    assert row["rmse"] == pytest.approx(math.sqrt(np.mean((ai - hu) ** 2)))
    assert row["bias"] == pytest.approx(np.mean(ai - hu))
    assert (row["pearson_r"], row["pearson_p"]) == pytest.approx(tuple(stats.pearsonr(ai, hu)))
    assert (row["spearman_rho"], row["spearman_p"]) == pytest.approx(tuple(stats.spearmanr(ai, hu)))


def test_error_stats_constant_or_tiny_input_has_no_correlation():
    row = error_stats(np.array([3.0, 3.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert row["mae"] == pytest.approx(1.0) and math.isnan(row["pearson_r"]) and "constant" in row["note"]
    assert "fewer than 3" in error_stats(np.array([1.0, 2.0]), np.array([2.0, 1.0]))["note"]


def test_load_human_keeps_known_columns_and_reads_ids_as_text(tmp_path):
    f = tmp_path / "h.csv"
    f.write_text("paperid,rating,soundness,extra\n007,6.5,3,x\n12,4,,y\n")
    h = load_human(f, ["soundness", "presentation", "rating"])
    assert list(h.columns) == ["paper_id", "soundness", "rating"]
    assert list(h["paper_id"]) == ["007", "12"] and math.isnan(h["soundness"][1])
    (tmp_path / "bad.csv").write_text("id,rating\n1,2\n")
    with pytest.raises(InputError, match="no 'paperid' column"):
        load_human(tmp_path / "bad.csv", ["rating"])
    (tmp_path / "none.csv").write_text("paperid,novelty\n1,2\n")
    with pytest.raises(InputError, match="none of the columns"):
        load_human(tmp_path / "none.csv", ["rating"])
    with pytest.raises(InputError):
        load_human(tmp_path / "absent.csv", ["rating"])


def test_compare_human_averages_runs_at_the_chosen_version():
    rows = []
    ai = {"A": [6, 8], "B": [3, 3], "C": [5, 6], "D": [9, 7]}
    for paper, runs in ai.items():
        rows += [review("m", paper, "latest", r, rating=v) for r, v in enumerate(runs)]
        rows += [review("m", paper, "v1", r, rating=1) for r in range(2)]  # must not count
    human = pd.DataFrame({"paper_id": ["A", "B", "C", "D", "Z"], "rating": [6.0, 4.0, 5.0, 8.5, 2.0]})
    out, notes = compare_human(pd.DataFrame(rows), human, "latest", ["rating", "soundness"])
    (row,) = out
    means = np.array([7.0, 3.0, 5.5, 8.0])
    hu = np.array([6.0, 4.0, 5.0, 8.5])
    assert (row["model"], row["metric"], row["version"], row["n"]) == ("m", "rating", "latest", 4)
    assert row["mse"] == pytest.approx(np.mean((means - hu) ** 2))
    assert row["spearman_rho"] == pytest.approx(stats.spearmanr(means, hu).statistic)
    v1, _ = compare_human(pd.DataFrame(rows), human, "v1", ["rating"])
    assert v1[0]["bias"] == pytest.approx(np.mean(1.0 - hu))
    _, notes = compare_human(pd.DataFrame(rows), human, "v9", ["rating"])
    assert "version 'v9' not in the reviews" in notes[0]
