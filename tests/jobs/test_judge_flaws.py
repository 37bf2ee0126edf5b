"""Flaw detection: a real review sweep (SmolLM2, local Ray) over papers whose meta.json lists known flaws,
judged by SmolLM2 with config/rubrics/flaws.yaml; recall and the paired v1-vs-v2 comparison are checked
against the rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from longsweep.cli import main
from longsweep.jobs.review import ReviewJob
from longsweep.jobs.review.options import ReviewOptions

from helpers import run_one

pytestmark = pytest.mark.integration

RUBRIC = str(Path(__file__).resolve().parents[2] / "config" / "rubrics" / "flaws.yaml")
FLAWS = {
    "graph-pruning": ["The method is only evaluated on two small datasets.",
                      "The baseline models were not tuned, unlike the proposed method."],
    "token-budget": ["The speed-up is measured on a single machine without repeated runs."],
}
BODY = ("# {title}\n\n## Abstract\n\nWe propose {topic}. It improves accuracy and speed on standard benchmarks.\n\n"
        "## Method\n\n{method}\n\n## Experiments\n\n{exp}\n\n## Conclusion\n\nOur method works well.\n")


def _papers(root: Path) -> Path:
    texts = {
        "graph-pruning": dict(title="Pruning Graphs Before Message Passing", topic="a pruning rule for graph networks",
                              method="We drop edges whose attention weight is below a threshold.",
                              exp="We test on Cora and Citeseer only. Baselines use default settings from their code."),
        "token-budget": dict(title="Exact Token Budgets for Long Prompts", topic="exact token counting",
                             method="We count tokens with the model's own tokenizer before sending a prompt.",
                             exp="On one laptop, a single run, prompts were 1.8 times faster to prepare."),
    }
    for pid, t in texts.items():
        d = root / pid
        d.mkdir(parents=True)
        (d / "v1.md").write_text(BODY.format(**t))
        (d / "v2.md").write_text(BODY.format(**t).replace("works well", "works well; we added a limitations section"))
        (d / "meta.json").write_text(json.dumps({"flaws": FLAWS[pid], "v2": {"context": "camera-ready revision"}}))
    return root


@pytest.fixture(scope="module")
def reviews(ray_local, smollm, tmp_path_factory):
    root = tmp_path_factory.mktemp("flaws")
    papers = _papers(root / "papers")
    # one retry (not two): a review that parses is all the judge needs
    opts = ReviewOptions(runs=1, versions=["v1", "v2"], completion_reserve=192, temperature=0.7,
                         repetition_penalty=1.3, max_retries=1)
    run_one(ReviewJob(opts, str(papers)), smollm.with_window(2048), root / "sweep", sweep_id="rv")
    rows = pq.read_table(root / "sweep" / "reviews").to_pylist()
    assert len(rows) == 4
    return root / "sweep", rows


def test_one_judgement_per_review_and_known_flaw_and_recall_follows_the_rows(reviews, tmp_path):
    from longsweep.reporting.judge import build_judge_report, format_judge_text, write_judge_plots
    src, rows = reviews
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok, [r["error"] for r in rows]
    out = tmp_path / "judged"
    # no --papers-dir: the flaws come from the meta.json files of the folder the review sweep recorded
    # 96 tokens, not the rubric's 256: `detected` comes first, so a cut answer keeps it (this test is about
    # the rows, not the judge's reasoning)
    code = main(["judge", str(src), "--rubric", RUBRIC, "--model", "smollm2-135m", "--window", "4096",
                 "--actors", "1", "--max-tokens", "96", "--out", str(out)])
    assert code in (0, 1)
    df = pd.read_parquet(out / "judgments")
    expected = {f"{r['key']}/flaw{i:02d}/smollm2-135m/run1" for r in ok
                for i in range(1, len(FLAWS[r["paper_id"]]) + 1)}
    assert set(df["key"]) == expected and len(df) == len(expected)
    for r in df.to_dict("records"):
        assert r["flaw"] == FLAWS[r["paper_id"]][r["flaw_index"] - 1] and r["rubric_kind"] == "flaws"
        if r["status"] == "ok":
            assert isinstance(r["detected"], bool) and pd.isna(r["score"])
        else:
            assert r["error_kind"] in ("unparseable_judgment", "prompt_too_long", "engine_error") and r["error"]
    rep = build_judge_report(out)
    okj = df[df["status"] == "ok"].assign(detected=lambda d: d["detected"].astype(bool))
    for r in rep["recall"]:
        g = okj[(okj["version"] == r["version"]) & (okj["source_model"] == r["source_model"])]
        assert r["n_judgments"] == len(g) and r["detected"] == int(g["detected"].sum())
        assert r["recall"] == pytest.approx(g["detected"].mean())
        assert r["n_reviews"] == df[df["version"] == r["version"]]["source_key"].nunique()
    assert {r["version"] for r in rep["recall"]} == {r["version"] for r in ok}
    paired = rep["paired"]
    both = {p for p in FLAWS if {"v1", "v2"} <= {r["version"] for r in ok if r["paper_id"] == p}}
    if both:  # per-paper recall of v2 minus v1, over the papers with both versions judged
        (row,) = paired["rows"]
        per = okj.groupby(["paper_id", "version"])["detected"].mean().unstack()
        assert row["n"] == len(both) and (paired["base"], paired["revised"]) == ("v1", "v2")
        assert row["mean_diff"] == pytest.approx((per["v2"] - per["v1"]).dropna().mean())
    assert "flaw recall" in format_judge_text(rep)
    assert (tmp_path / "plots" / "flaw_recall.png") in write_judge_plots(rep, tmp_path / "plots")
