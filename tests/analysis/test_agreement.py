"""ICC and Krippendorff's alpha against published worked examples and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from analysis_data import review

from longsweep.analysis.agreement import (agreement_row, between_models, between_reviewers, icc_oneway,
                                          icc_twoway, krippendorff_alpha, run_consistency)

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges; published ICC(1,1)=.17, ICC(2,1)=.29, ICC(3,1)=.71
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 observers x 12 units with missing
# values; published alpha: nominal .743, ordinal .815, interval .849
K2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
])

# the 3 coders x 15 units example on Wikipedia ("Krippendorff's alpha", a computational example):
# nominal alpha 0.691, interval alpha 0.811
WIKI = np.array([
    [np.nan, np.nan, np.nan, np.nan, np.nan, 3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
    [1, np.nan, 2, 1, 3, 3, 4, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
    [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4],
])


def test_icc_twoway_matches_shrout_fleiss_table():
    got = icc_twoway(SHROUT_FLEISS)
    assert round(got["icc1"], 2) == 0.17 and round(got["icc2_1"], 2) == 0.29 and round(got["icc3_1"], 2) == 0.71
    # by hand from the mean squares: BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02 (Shrout & Fleiss, Table 3)
    bms, jms = 4 * np.var(SHROUT_FLEISS.mean(axis=1), ddof=1), 6 * np.var(SHROUT_FLEISS.mean(axis=0), ddof=1)
    assert (round(bms, 2), round(jms, 2)) == (11.24, 32.49)
    assert icc_oneway(list(SHROUT_FLEISS)) == pytest.approx(got["icc1"])  # balanced one-way = ICC(1)


def _icc_from_anova(table: np.ndarray) -> tuple[float, float, float]:
    """ICC(1), ICC(2,1), ICC(3,1) from the mean squares of statsmodels' two-way ANOVA (targets + raters, no
    interaction) and Shrout & Fleiss's formulas: a reference computed apart from ours."""
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm
    n, k = table.shape
    long = pd.DataFrame({"t": np.repeat(range(n), k), "r": np.tile(range(k), n), "y": table.ravel()})
    a = anova_lm(ols("y ~ C(t) + C(r)", data=long).fit())
    ms = a["sum_sq"] / a["df"]
    bms, jms, ems = ms["C(t)"], ms["C(r)"], ms["Residual"]
    wms = (a["sum_sq"]["C(r)"] + a["sum_sq"]["Residual"]) / (n * (k - 1))
    return ((bms - wms) / (bms + (k - 1) * wms), (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n),
            (bms - ems) / (bms + (k - 1) * ems))


RNG = np.random.default_rng(7)
# 10 targets x 3 raters: a target's level (1-7) plus each rater's own 0-2
RANDOM_10X3 = RNG.integers(1, 8, size=(10, 1)) + RNG.integers(0, 3, size=(10, 3))


@pytest.mark.parametrize("table", [SHROUT_FLEISS, RANDOM_10X3], ids=["shrout-fleiss", "random-10x3"])
def test_icc_against_statsmodels_anova(table):
    got = icc_twoway(table)
    assert (got["icc1"], got["icc2_1"], got["icc3_1"]) == pytest.approx(_icc_from_anova(table))


def test_icc_oneway_unbalanced_by_hand():
    # groups [1,3] [4,6] [8,8,11]: N=7, a=3, grand 41/7; MSB=(2982/49)/2=213/7, MSW=10/4=5/2,
    # n0=(7-17/7)/2=16/7; ICC=(213/7-5/2)/(213/7+(9/7)(5/2)) = 391/471
    assert icc_oneway([np.array([1, 3]), np.array([4, 6]), np.array([8, 8, 11])]) == pytest.approx(391 / 471)
    assert math.isnan(icc_oneway([np.array([1.0, 2.0])]))  # one group: undefined


def test_icc_twoway_refuses_incomplete_or_tiny_tables():
    assert math.isnan(icc_twoway(np.array([[1.0, np.nan], [2.0, 3.0]]))["icc2_1"])
    assert math.isnan(icc_twoway(np.array([[1.0, 2.0]]))["icc3_1"])


def test_krippendorff_alpha_published_examples():
    assert round(krippendorff_alpha(K2011, "nominal"), 3) == 0.743
    assert round(krippendorff_alpha(K2011, "ordinal"), 3) == 0.815
    assert round(krippendorff_alpha(K2011, "interval"), 3) == 0.849
    assert round(krippendorff_alpha(WIKI, "nominal"), 3) == 0.691
    assert round(krippendorff_alpha(WIKI, "interval"), 3) == 0.811


def test_krippendorff_alpha_by_hand_and_edge_cases():
    # 2 coders, units (1,1) (1,2) (2,2): values 1 x3, 2 x3; o12=o21=1, n=6.
    # nominal: 1 - (n-1) * 2 / (2 * 3 * 3) = 1 - 10/18 = 4/9; ordinal: delta12 = (3+3 - (3+3)/2)^2 = 9, same ratio
    data = np.array([[1, 1, 2], [1, 2, 2]], dtype=float)
    assert krippendorff_alpha(data, "nominal") == pytest.approx(4 / 9)
    assert krippendorff_alpha(data, "ordinal") == pytest.approx(4 / 9)
    assert krippendorff_alpha(np.array([[1, 2, 3, 4], [1, 2, 3, 4]]), "ordinal") == 1.0
    assert math.isnan(krippendorff_alpha(np.array([[1.0, np.nan], [np.nan, 2.0]])))  # nothing pairable
    assert math.isnan(krippendorff_alpha(np.array([[3.0, 3.0], [3.0, 3.0]])))  # no variation: undefined
    with pytest.raises(ValueError):
        krippendorff_alpha(data, "ratio-ish")


def test_agreement_row_counts_units_and_complete_cases():
    wide = pd.DataFrame({"a": [1, 2, 3, np.nan], "b": [1, 3, 3, 2], "c": [2, 2, np.nan, np.nan]})
    row = agreement_row(wide)
    assert (row["n_units"], row["n_raters"], row["n_complete"]) == (3, 3, 2)
    assert row["alpha_ordinal"] == pytest.approx(krippendorff_alpha(wide.to_numpy().T, "ordinal"))
    ref = icc_twoway(wide.dropna().to_numpy())
    assert (row["icc2_1"], row["icc3_1"]) == pytest.approx((ref["icc2_1"], ref["icc3_1"]))
    assert not math.isnan(row["icc2_1"])


def test_run_consistency_sd_and_icc1():
    rows = []
    cells = {("A", "v1"): [2, 3, 3], ("A", "latest"): [3, 3], ("B", "v1"): [1, 1, 2], ("B", "latest"): [4]}
    for (paper, version), vals in cells.items():
        rows += [review("m", paper, version, r, soundness=v) for r, v in enumerate(vals)]
    df = pd.DataFrame(rows)
    (row,) = run_consistency(df, ["soundness"])
    multi = [np.array(v, dtype=float) for v in cells.values() if len(v) >= 2]  # the single-run cell is left out
    assert row["n_cells"] == 3 and row["runs_per_cell"] == pytest.approx(8 / 3)
    assert row["mean_within_sd"] == pytest.approx(np.mean([np.std(c, ddof=1) for c in multi]))
    assert row["icc1"] == pytest.approx(icc_oneway(multi))


def test_between_models_averages_runs_first():
    rows = []
    for m, offs in (("a", 0), ("b", 1)):
        for p, base in (("P1", 1), ("P2", 2), ("P3", 3)):
            rows += [review(m, p, "v1", r, rating=base + offs + r % 2) for r in range(2)]
    (row,) = between_models(pd.DataFrame(rows), ["rating"])
    assert (row["n_units"], row["n_raters"], row["n_complete"]) == (3, 2, 3)
    # b is a rated 1 higher everywhere: perfect consistency, not perfect absolute agreement
    assert row["icc3_1"] == pytest.approx(1.0) and row["icc2_1"] < 1.0
    assert between_models(pd.DataFrame([r for r in rows if r["model"] == "a"]), ["rating"]) == []


def test_between_reviewers_uses_the_reviewers_table():
    rows = []
    scores = {("P1", 0): [2, 2, 3, 2], ("P1", 1): [3, 3, 3, 3], ("P2", 0): [1, 2, 1, 1], ("P2", 1): [4, 4, 3, 4]}
    for (paper, run), vals in scores.items():
        for i, v in enumerate(vals, start=1):
            rows.append({**review("cycle", paper, "v1", run, soundness=v), "reviewer": i})
    (row,) = between_reviewers(pd.DataFrame(rows), ["soundness"])
    data = np.array(list(scores.values()), dtype=float).T  # reviewers x reviews
    assert (row["model"], row["n_units"], row["n_raters"]) == ("cycle", 4, 4)
    assert row["alpha_ordinal"] == pytest.approx(krippendorff_alpha(data, "ordinal"))
    assert row["icc2_1"] == pytest.approx(icc_twoway(data.T)["icc2_1"])
    assert between_reviewers(None, ["soundness"]) == []
