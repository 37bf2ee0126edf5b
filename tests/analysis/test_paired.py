"""Paired statistics against scipy / numpy on fixed tables; pairing by paper, not by (paper, run)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_data import review, synthetic, write_table
from scipy import stats

from longsweep.analysis.paired import bootstrap, compare, holm, paired_test
from longsweep.analysis.tables import load, pairs, per_paper
from longsweep.errors import InputError

BASE = np.array([2.0, 3.0, 2.5, 3.5, 1.5, 2.0, 3.0, 2.25])
REV = np.array([2.5, 3.0, 3.5, 3.25, 2.5, 2.75, 3.5, 3.0])


def test_paired_test_matches_scipy_and_hand_formulas():
    row = paired_test(BASE, REV, n_boot=2000, seed=0)
    diff = REV - BASE
    t = stats.ttest_rel(REV, BASE)
    w = stats.wilcoxon(diff)
    sd = diff.std(ddof=1)
    half = stats.t.ppf(0.975, diff.size - 1) * sd / math.sqrt(diff.size)
    assert row["n"] == 8 and row["df"] == 7
    assert row["mean_diff"] == pytest.approx(diff.mean())
    assert row["mean_base"] == pytest.approx(BASE.mean()) and row["mean_revised"] == pytest.approx(REV.mean())
    assert row["t"] == pytest.approx(t.statistic) and row["p_t"] == pytest.approx(t.pvalue)
    assert row["t"] == pytest.approx(diff.mean() / (sd / math.sqrt(8)))
    assert row["wilcoxon_w"] == pytest.approx(w.statistic) and row["p_wilcoxon"] == pytest.approx(w.pvalue)
    assert row["d_z"] == pytest.approx(diff.mean() / sd)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((diff.mean() - half, diff.mean() + half))
    # the t CI is the one scipy reports for the one-sample test of the differences
    ci = stats.ttest_1samp(diff, 0).confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["note"] == ""


def test_bootstrap_is_seeded_and_matches_a_direct_numpy_resample():
    diff = REV - BASE
    got = bootstrap(diff, n_boot=10_000, seed=0)
    idx = np.random.default_rng(0).integers(0, diff.size, size=(10_000, diff.size))
    means, sds = diff[idx].mean(axis=1), diff[idx].std(axis=1, ddof=1)
    dz = means[sds > 0] / sds[sds > 0]  # a resample of equal differences has no d_z
    assert (got["boot_low"], got["boot_high"]) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert (got["dz_boot_low"], got["dz_boot_high"]) == pytest.approx(tuple(np.percentile(dz, [2.5, 97.5])))
    assert bootstrap(diff, 10_000, 0) == got
    assert bootstrap(diff, 10_000, 1) != got
    assert got["boot_low"] < diff.mean() < got["boot_high"]


def test_all_zero_differences_give_wilcoxon_p_one_and_a_note():
    x = np.array([2.0, 3.0, 4.0])
    row = paired_test(x, x.copy(), n_boot=100)
    assert row["p_wilcoxon"] == 1.0 and math.isnan(row["wilcoxon_w"])
    assert math.isnan(row["t"]) and math.isnan(row["d_z"])
    assert "all differences are zero" in row["note"] and "sd 0" in row["note"]


def test_single_pair_is_reported_without_tests():
    row = paired_test(np.array([2.0]), np.array([3.0]), n_boot=100)
    assert row["n"] == 1 and row["mean_diff"] == 1.0
    assert math.isnan(row["p_t"]) and math.isnan(row["boot_low"])
    assert "fewer than 2 papers" in row["note"]


def test_holm_against_hand_computation():
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    got = holm([0.02, float("nan"), 0.01])  # NaN is not a hypothesis: m = 2
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)


def test_holm_against_statsmodels():
    from statsmodels.stats import multitest  # a test dependency (pyproject's [test])
    p = np.random.default_rng(3).uniform(0, 0.2, size=7)
    assert holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1])


def _repeated_runs_rows() -> list[dict]:
    """3 papers x 4 runs: the runs of one paper share its offset, so (paper, run) pairs are not independent."""
    rows = []
    base = {"A": [2, 2, 3, 2], "B": [3, 3, 3, 2], "C": [1, 2, 1, 1]}
    rev = {"A": [3, 3, 3, 2], "B": [3, 4, 3, 3], "C": [1, 1, 2, 1]}
    for paper in base:
        for run in range(4):
            rows.append(review("m", paper, "v1", run, soundness=base[paper][run]))
            rows.append(review("m", paper, "latest", run, soundness=rev[paper][run]))
    return rows


def test_pairs_are_papers_not_paper_runs(tmp_path):
    rows = _repeated_runs_rows()
    write_table(tmp_path / "s" / "reviews", rows)
    out, per, _ = compare(load([tmp_path / "s"]), "v1", "latest", ["soundness"], n_boot=500)
    row = out[0]
    assert row["n"] == 3 and row["df"] == 2  # papers, not 12 (paper, run) pairs
    b = np.array([np.mean([2, 2, 3, 2]), np.mean([3, 3, 3, 2]), np.mean([1, 2, 1, 1])])
    r = np.array([np.mean([3, 3, 3, 2]), np.mean([3, 4, 3, 3]), np.mean([1, 1, 2, 1])])
    by_paper = stats.ttest_rel(r, b)
    assert row["t"] == pytest.approx(by_paper.statistic) and row["p_t"] == pytest.approx(by_paper.pvalue)
    flat_b = [x["soundness"] for x in rows if x["version"] == "v1"]
    flat_r = [x["soundness"] for x in rows if x["version"] == "latest"]
    by_run = stats.ttest_rel(flat_r, flat_b)
    assert not math.isclose(row["t"], by_run.statistic) and row["p_t"] > by_run.pvalue
    assert sorted(per["paper_id"]) == ["A", "B", "C"] and per["diff"].to_numpy() == pytest.approx(r - b)


def test_compare_rows_per_model_and_holm_within_model(sweep):
    data = load([sweep])
    out, per, notes = compare(data, "v1", "latest", ["soundness", "presentation", "contribution", "rating"],
                              n_boot=300)
    assert [(r["model"], r["metric"]) for r in out][:2] == [("alpha", "soundness"), ("alpha", "presentation")]
    assert len(out) == 8 and notes == []
    for model in ("alpha", "beta"):
        mine = [r for r in out if r["model"] == model]
        assert [r["p_t_holm"] for r in mine] == pytest.approx(list(holm([r["p_t"] for r in mine])))
        for r in mine:  # every row recomputed from the raw rows: runs averaged, paired by paper
            pp = per_paper(data.reviews[data.reviews["model"] == model], r["metric"])
            both, _ = pairs(pp, model, "v1", "latest")
            assert r["n"] == 8 == len(both)
            assert r["t"] == pytest.approx(stats.ttest_rel(both["revised"], both["base"]).statistic)
    assert len(per) == 8 * 8


def test_missing_version_and_null_metric_are_skipped_with_notes(tmp_path):
    rows = synthetic(models=("alpha",), papers=5, runs=2)
    rows = [r for r in rows if not (r["paper_id"] == "P0" and r["version"] == "latest")]
    for r in rows:
        r["contribution"] = None
    write_table(tmp_path / "s" / "reviews", rows)
    out, _, notes = compare(load([tmp_path / "s"]), "v1", "latest", ["soundness", "contribution"], n_boot=100)
    assert [r["metric"] for r in out] == ["soundness"] and out[0]["n"] == 4
    assert any("1 paper(s) with only one of v1/latest" in n for n in notes)
    assert any("alpha/contribution: all values null" in n for n in notes)


def test_unknown_version_or_no_pairs_raise_input_error(tmp_path, sweep):
    with pytest.raises(InputError, match="version 'v2' not in the reviews"):
        compare(load([sweep]), "v1", "v2", ["rating"], n_boot=10)
    rows = [r for r in synthetic(models=("alpha",), papers=4) if not (r["version"] == "latest" and r["paper_id"] < "P2")]
    rows = [r for r in rows if not (r["version"] == "v1" and r["paper_id"] >= "P2")]
    write_table(tmp_path / "x" / "reviews", rows)
    with pytest.raises(InputError, match="no pairs"):
        compare(load([tmp_path / "x"]), "v1", "latest", ["rating"], n_boot=10)
