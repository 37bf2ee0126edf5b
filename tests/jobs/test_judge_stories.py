"""Stories written by SmolLM2 on a local Ray, judged by SmolLM2 with config/rubrics/story.yaml: one row per
(response, criterion), a judge sweep cut short resumed, unparseable answers as error rows left out of means,
several judge models and runs for agreement. (SmolLM2 judging SmolLM2 means nothing as a result: the point
is that the path runs and records what it did.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from longsweep.cli import main
from longsweep.jobs.stories import StoriesJob, StoryOptions

from helpers import run_one

pytestmark = pytest.mark.integration

RUBRIC = str(Path(__file__).resolve().parents[2] / "config" / "rubrics" / "story.yaml")
CRITERIA = [c["id"] for c in yaml.safe_load(Path(RUBRIC).read_text())["criteria"]]
SEQ = """sequences:
  - id: fox
    system: You are a storyteller. Answer in two or three sentences.
    prompts:
      - {name: start, text: "Begin a story about a fox who wants to fly."}
      - {name: middle, text: "Continue the story."}
      - {name: end, text: "End the story."}
  - id: keeper
    prompts:
      - {name: start, text: "Write the opening of a story about a lighthouse keeper, in two sentences."}
      - {name: end, text: "Finish the story in two sentences."}
"""
JUDGE = ["--rubric", RUBRIC, "--model", "smollm2-135m", "--window", "4096", "--actors", "1"]
# 160 tokens hold seven judgements when the judge keeps to them (greedy SmolLM2 stops by ~145), and at
# least the first when it rambles: the rows are the point here, not the judge's prose
ANSWER = 160


@pytest.fixture(scope="module")
def stories(ray_local, smollm, tmp_path_factory):
    """A real story sweep: 5 responses of SmolLM2."""
    root = tmp_path_factory.mktemp("stories")
    (root / "seq.yaml").write_text(SEQ)
    run_one(StoriesJob(StoryOptions(max_tokens=48, repetition_penalty=1.1), root / "seq.yaml"), smollm,
            root / "sweep", sweep_id="src")
    rows = pq.read_table(root / "sweep" / "stories").to_pylist()
    assert len(rows) == 5
    return root / "sweep", [r for r in rows if r["status"] == "ok"]


def _judgments(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "judgments")


@pytest.fixture(scope="module")
def judged(stories, tmp_path_factory) -> Path:
    """The stories judged once, one response per batch (so one file per response or so)."""
    src, _ = stories
    out = tmp_path_factory.mktemp("judged") / "judged"
    code = main(["judge", str(src), *JUDGE, "--max-tokens", str(ANSWER), "--batch-items", "1", "--out", str(out)])
    assert code in (0, 1)
    return out


def test_every_response_gets_one_row_per_criterion_in_range_or_an_error_with_its_reason(stories, judged):
    src, ok = stories
    out = judged
    df = _judgments(out)
    expected = {f"{r['key']}/{c}/smollm2-135m/run1" for r in ok for c in CRITERIA}
    assert len(df) == len(expected) and set(df["key"]) == expected
    for r in df.to_dict("records"):
        if r["status"] == "ok":
            assert 1 <= r["score"] <= 5 and pd.isna(r["error"]) and pd.isna(r["error_kind"])
        else:
            assert r["error_kind"] == "unparseable_judgment" and r["error"] and pd.isna(r["score"])
            assert r["judge_answer"] is not None
        assert r["context_tokens"] + ANSWER + 32 <= 4096
        assert r["item_key"] == r["key"].replace(f"/{r['criterion']}/", "/")
    # one call per response: its usage on the item's first row only (sums count it once), exact counts
    usage = df[df["prompt_tokens"].notna()]
    assert len(usage) == len(ok) and set(usage["criterion"]) == {CRITERIA[0]}
    assert (usage["prompt_tokens"] == usage["context_tokens"]).all() and usage["completion_tokens"].gt(0).all()
    assert (df["status"] == "ok").sum() >= len(ok)  # at least one valid score per response on average
    src_rows = {r["key"]: r for r in ok}
    for r in df.to_dict("records"):  # the source row's context is carried
        s = src_rows[r["source_key"]]
        assert (r["sequence_id"], r["turn"], r["source_model"], r["source_run"]) == \
               (s["sequence_id"], s["turn"], s["model"], s["run"])
    later = df[df["turn"] > 1]
    assert (later["cached_tokens"] > 0).any()  # earlier turns (and the rubric) came from the KV cache
    manifest = (out / "manifest.json").read_text()
    assert '"job": "judge"' in manifest and '"rubric_sha256"' in manifest


def test_a_judge_sweep_cut_short_resumes_and_judges_only_what_is_missing(stories, judged, tmp_path, capsys):
    """What a killed judge leaves on disk (the files of the batches that landed; a killed CLI driver is
    tests/integration/test_review_sweep.py's, slow tier): a rerun judges only the missing responses, every
    key once, and rewrites nothing written before."""
    import shutil
    src, ok = stories
    out = Path(shutil.copytree(judged, tmp_path / "judged"))
    files = sorted((out / "judgments").glob("*.parquet"), key=lambda p: pq.read_metadata(p).num_rows)
    for p in files[: len(files) // 2]:  # the batches that had not landed
        p.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "judgments").glob("*.parquet")}
    done = set(pq.read_table(out / "judgments").column("item_key").to_pylist())
    assert 0 < len(done) < len(ok), "half the files should hold some but not all of the responses"
    capsys.readouterr()
    code = main(["judge", str(src), *JUDGE, "--max-tokens", str(ANSWER), "--batch-items", "1", "--out", str(out)])
    assert code in (0, 1)
    assert f"items: {len(ok)} ({len(done)} already done, {len(ok) - len(done)} run now)" in capsys.readouterr().out
    df = _judgments(out)
    assert df["key"].is_unique and len(df) == len(ok) * len(CRITERIA)
    for name, mtime in before.items():  # nothing written before was rewritten
        assert (out / "judgments" / name).stat().st_mtime_ns == mtime


def test_unparseable_scores_are_error_rows_left_out_of_means_and_agreement_is_reported(stories, tmp_path):
    """A 40-token answer cannot hold seven judgements: the criteria it did not reach are error rows with
    their reason, never a default; the report's means are pandas' means over the ok rows. Two judge models
    (one GGUF under two registry names) and two sampled runs give the agreement tables. (One sequence of the
    story sweep, its 2 turns, is judged: 2 x 2 x 2 calls and a retry of 4, not 5 x 2 x 2 and 10.)"""
    from longsweep.config import PACKAGED_MODELS_FILE
    from longsweep.reporting.judge import build_judge_report, format_judge_text
    src, ok = stories
    src, ok = _one_sequence(src, "keeper", tmp_path / "src"), [r for r in ok if r["sequence_id"] == "keeper"]
    assert len(ok) == 2
    reg = yaml.safe_load(PACKAGED_MODELS_FILE.read_text())
    reg["models"] = {"smollm2-135m": reg["models"]["smollm2-135m"], "judge-b": reg["models"]["smollm2-135m"]}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(reg))
    (tmp_path / "judge.yaml").write_text("max_retries: 0\ntemperature: 0.8\nruns: 2\n")
    out = tmp_path / "judged"
    code = main(["judge", str(src), *JUDGE, "--model", "judge-b", "--max-tokens", "40", "--out", str(out),
                 "--models-file", str(tmp_path / "models.yaml"), "--config", str(tmp_path / "judge.yaml")])
    assert code == 1  # some rows are errors
    df = _judgments(out)
    assert len(df) == len(ok) * len(CRITERIA) * 2 * 2 and df["key"].is_unique
    err = df[df["status"] == "error"]
    assert len(err) and (err["error_kind"] == "unparseable_judgment").all() and err["score"].isna().all()
    assert err["error"].str.contains("cut off at max_tokens").all() and (err["finish_reason"] == "length").all()
    okr = df[df["status"] == "ok"]
    assert len(okr) and okr["score"].between(1, 5).all()
    rep = build_judge_report(out)
    for r in rep["scores"]:
        g = df[(df["model"] == r["judge"]) & (df["criterion"] == r["criterion"])]
        assert r["n_errors"] == (g["status"] == "error").sum() and r["n_rows"] == (g["status"] == "ok").sum()
        per_response = g[g["status"] == "ok"].groupby("source_key")["score"].mean()
        if len(per_response):
            assert r["mean"] == pytest.approx(per_response.mean())
    by_judge = df[df["run"] == 1]  # one run: the report's mean is the plain mean of the ok rows
    one = build_judge_report(_only(by_judge, tmp_path / "run1"))
    for r in one["scores"]:
        g = by_judge[(by_judge["model"] == r["judge"]) & (by_judge["criterion"] == r["criterion"])]
        expected = g.loc[g["status"] == "ok", "score"].mean()
        assert (pd.isna(expected) and pd.isna(r["mean"])) or r["mean"] == pytest.approx(expected)
    assert {r["judge"] for r in rep["agreement_runs"]} == {"smollm2-135m", "judge-b"}
    assert all(r["n_raters"] == 2 for r in rep["agreement_runs"] + rep["agreement_judges"])
    assert rep["agreement_judges"] and "agreement across judge models" in format_judge_text(rep)

    # --retry-errors: judge-b's items with an error row run again; every row of such an item is replaced
    # (the old ones move to retried/judgments/), every key keeps exactly one row
    again = df[df["model"] == "judge-b"].groupby("item_key")["status"].apply(lambda s: (s != "ok").any())
    code = main(["judge", str(src), "--rubric", RUBRIC, "--model", "judge-b", "--window", "4096", "--actors", "1",
                 "--max-tokens", "40", "--out", str(out), "--models-file", str(tmp_path / "models.yaml"),
                 "--config", str(tmp_path / "judge.yaml"), "--retry-errors"])
    assert code == 1
    after = _judgments(out)
    assert after["key"].is_unique and set(after["key"]) == set(df["key"])
    moved = pd.read_parquet(out / "retried" / "judgments")
    assert set(moved["item_key"]) == set(again[again].index) and len(moved) == again.sum() * len(CRITERIA)
    new = after[after["item_key"].isin(moved["item_key"])]
    assert (new["finished_at"] >= moved["finished_at"].max()).all()


def _one_sequence(src: Path, sequence_id: str, dest: Path) -> Path:
    """A copy of the story sweep whose table holds one sequence's rows (as the sweep wrote them)."""
    import shutil
    import pyarrow.compute as pc
    out = Path(shutil.copytree(src, dest))
    table = pq.read_table(out / "stories")
    for p in (out / "stories").glob("*.parquet"):
        p.unlink()
    pq.write_table(table.filter(pc.equal(table["sequence_id"], sequence_id)), out / "stories" / "part-0.parquet")
    return out


def _only(df: pd.DataFrame, folder: Path) -> Path:
    (folder / "judgments").mkdir(parents=True)
    df.to_parquet(folder / "judgments" / "part-0.parquet")
    return folder
