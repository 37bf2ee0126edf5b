"""``longsweep compare`` end to end through argparse: text, JSON, CSV, plots, errors."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest
from analysis_data import review, synthetic, write_table
from scipy import stats

from longsweep.analysis.command import add_parser, run
from longsweep.errors import InputError


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="longsweep")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    return ap.parse_args(["compare", *argv])


def run_json(argv: list[str], capsys) -> dict:
    assert run(parse([*argv, "--json"])) == 0
    return json.loads(capsys.readouterr().out)


def test_parser_defaults_and_flags():
    a = parse(["r1", "r2"])
    assert a.results == ["r1", "r2"] and (a.base, a.revised) == ("v1", "latest")
    assert a.metrics == ["soundness", "presentation", "contribution", "rating"] and a.bootstrap == 10_000
    assert parse(["r", "--metrics", "rating,soundness"]).metrics == ["rating", "soundness"]
    with pytest.raises(SystemExit):
        parse(["r", "--metrics", "novelty"])


def test_json_output_is_one_document_with_every_table(sweep, tmp_path, capsys):
    rv = [{**review("alpha", f"P{p}", v, 0, soundness=s, rating=2 * s), "reviewer": i}
          for p in range(4) for v in ("v1", "latest") for i, s in enumerate((2, 3, 3, 4 - p % 2), start=1)]
    write_table(sweep / "reviewers", rv)
    doc = run_json([str(sweep), "--bootstrap", "200"], capsys)
    assert (doc["base"], doc["revised"]) == ("v1", "latest")
    assert len(doc["paired"]) == 8 and all(r["n"] == 8 for r in doc["paired"])
    assert {r["model"] for r in doc["consistency"]} == {"alpha", "beta"}
    assert {r["metric"] for r in doc["agreement_models"]} == set(doc["metrics"])
    assert {r["model"] for r in doc["agreement_reviewers"]} == {"alpha"}
    assert len(doc["per_paper"]) == 64 and doc["human"] == []
    row = next(r for r in doc["paired"] if (r["model"], r["metric"]) == ("beta", "rating"))
    per = [p for p in doc["per_paper"] if (p["model"], p["metric"]) == ("beta", "rating")]
    ref = stats.ttest_rel([p["revised"] for p in per], [p["base"] for p in per])
    assert row["t"] == pytest.approx(ref.statistic) and row["p_t"] == pytest.approx(ref.pvalue)


def test_text_csv_and_plots(sweep, tmp_path, capsys):
    human = tmp_path / "human.csv"
    human.write_text("paperid,rating,soundness\n" + "".join(f"P{p},{3 + p % 5},{1 + p % 4}\n" for p in range(8)))
    args = parse([str(sweep), "--bootstrap", "200", "--metrics", "soundness,rating", "--csv", str(tmp_path / "csv"), "--plots",
                  str(tmp_path / "png"), "--human", str(human)])
    assert run(args) == 0
    out, err = capsys.readouterr()
    assert "paired by paper, runs averaged first: latest - v1" in out and "AI vs human" in out
    assert "alpha" in out and "p Holm" in out
    names = {p.name for p in (tmp_path / "csv").iterdir()}
    assert names == {"paired.csv", "consistency.csv", "agreement_models.csv", "human.csv", "per_paper.csv"}
    with open(tmp_path / "csv" / "human.csv") as f:
        hrows = list(csv.DictReader(f))
    assert [(r["model"], r["metric"]) for r in hrows] == [(m, k) for m in ("alpha", "beta")
                                                          for k in ("soundness", "rating")]
    assert all(r["version"] == "latest" and int(r["n"]) == 8 for r in hrows)
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["diff_hist_rating.png", "diff_hist_soundness.png", "effect_sizes.png", "slope_rating.png",
                    "slope_soundness.png"]
    assert all((tmp_path / "png" / n).read_bytes()[:4] == b"\x89PNG" for n in pngs)
    assert "wrote:" in err


def test_custom_versions_and_human_version(tmp_path, capsys):
    write_table(tmp_path / "s" / "reviews", synthetic(models=("m",), papers=5, runs=2, versions=("v1", "v2")))
    human = tmp_path / "h.csv"
    human.write_text("paperid,rating\n" + "".join(f"P{p},{p + 2}\n" for p in range(5)))
    doc = run_json([str(tmp_path / "s"), "--revised", "v2", "--human", str(human), "--human-version", "v1",
                    "--bootstrap", "100", "--metrics", "rating"], capsys)
    assert doc["revised"] == "v2" and doc["human_version"] == "v1" and doc["human"][0]["n"] == 5
    assert [r["metric"] for r in doc["paired"]] == ["rating"]


def test_missing_data_is_noted_not_fatal(tmp_path, capsys):
    rows = synthetic(models=("m",), papers=4, runs=2)
    rows = [r for r in rows if not (r["paper_id"] == "P3" and r["version"] == "latest")]
    for r in rows:
        r["presentation"] = None
    write_table(tmp_path / "s" / "reviews", rows)
    doc = run_json([str(tmp_path / "s"), "--bootstrap", "50"], capsys)
    assert {r["metric"] for r in doc["paired"]} == {"soundness", "contribution", "rating"}
    assert all(r["n"] == 3 for r in doc["paired"])
    assert any("presentation: all values null" in n for n in doc["notes"])
    assert any("only one of v1/latest" in n for n in doc["notes"])


def test_identical_versions_give_a_result_with_nulls_in_json(tmp_path, capsys):
    rows = []
    for p in range(3):
        rows += [review("m", f"P{p}", v, 0, rating=p + 3) for v in ("v1", "latest")]
    write_table(tmp_path / "s" / "reviews", rows)
    doc = run_json([str(tmp_path / "s"), "--bootstrap", "50", "--metrics", "rating"], capsys)
    (row,) = doc["paired"]
    assert row["mean_diff"] == 0 and row["t"] is None and row["p_wilcoxon"] == 1.0
    assert any("all differences are zero" in n for n in doc["notes"])


def test_bad_inputs_raise_input_error(tmp_path, sweep):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no reviews/ table"):
        run(parse([str(tmp_path / "empty")]))
    with pytest.raises(InputError, match="no pairs"):
        run(parse([str(sweep), "--base", "v0"]))
    with pytest.raises(InputError, match="both 'v1'"):
        run(parse([str(sweep), "--revised", "v1"]))
    with pytest.raises(InputError) as e:
        run(parse([str(sweep), "--human", str(tmp_path / "absent.csv"), "--bootstrap", "10"]))
    assert "\n" not in str(e.value)


def test_seeded_bootstrap_is_reproducible(sweep, capsys):
    a = run_json([str(sweep), "--bootstrap", "300", "--metrics", "rating"], capsys)
    b = run_json([str(sweep), "--bootstrap", "300", "--metrics", "rating"], capsys)
    c = run_json([str(sweep), "--bootstrap", "300", "--metrics", "rating", "--seed", "7"], capsys)
    key = lambda d: [(r["boot_low"], r["boot_high"]) for r in d["paired"]]  # noqa: E731
    assert key(a) == key(b) and key(a) != key(c)
    assert np.all([r["boot_low"] <= r["mean_diff"] <= r["boot_high"] for r in a["paired"]])
