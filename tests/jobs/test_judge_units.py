"""The judge job without Ray: rubric files, answer parsing, known flaws, fitting with exact counts, the
driver's items and error rows, and the judged-folder report on tables written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from longsweep.errors import ConfigError, InputError
from longsweep.jobs.judge import JudgeJob
from longsweep.jobs.judge.options import JudgeOptions
from longsweep.jobs.judge.parse import FLAW, parse_answer
from longsweep.jobs.judge.rubric import load_rubric
from longsweep.jobs.judge.sources import flaws_from_meta, flaws_from_pairs
from longsweep.results import to_table

ROOT = Path(__file__).resolve().parents[2]
STORY = ROOT / "config" / "rubrics" / "story.yaml"
FLAWS = ROOT / "config" / "rubrics" / "flaws.yaml"


def write_table(folder: Path, table: str, schema, rows: list[dict]) -> Path:
    (folder / table).mkdir(parents=True, exist_ok=True)
    pq.write_table(to_table(rows, schema), folder / table / "part-0.parquet")
    return folder


def story_source(folder: Path, turns: list[str], *, errors: int = 0) -> Path:
    from longsweep.jobs.stories import StoriesJob
    ik = "fox/run1/writer"
    rows = [{"key": f"{ik}/turn{i:02d}", "item_key": ik, "model": "writer", "status": "ok", "sequence_id": "fox",
             "run": 1, "turn": i, "prompt_name": f"t{i}", "prompt": f"Write part {i} of the story.", "response": text}
            for i, text in enumerate(turns, 1)]
    rows += [{"key": f"{ik}/turn{len(turns) + j:02d}", "item_key": ik, "model": "writer", "status": "error",
              "error_kind": "skipped_after_failure", "sequence_id": "fox", "run": 1, "turn": len(turns) + j}
             for j in range(1, errors + 1)]
    return write_table(folder, "stories", StoriesJob.schema(), rows)


def review_source(folder: Path, reviews: list[tuple[str, str]], *, errors: int = 0) -> Path:
    from longsweep.jobs.review import ReviewJob
    rows = [{"key": f"{p}/{v}/run1/reviewer", "model": "reviewer", "status": "ok", "paper_id": p, "version": v,
             "run": 1, "summary": f"The paper {p} proposes a method.", "strengths": ["Clear writing."],
             "weaknesses": ["The baseline is weak."], "questions": [], "raw_content": "{}"} for p, v in reviews]
    rows += [{"key": f"bad{j}/v1/run1/reviewer", "model": "reviewer", "status": "error", "paper_id": f"bad{j}",
              "version": "v1", "run": 1, "error_kind": "unparseable_review"} for j in range(errors)]
    return write_table(folder, "reviews", ReviewJob.schema(), rows)


# ---- rubrics ---------------------------------------------------------------------------------------------

def test_shipped_rubrics_load_and_their_schema_bounds_every_score():
    story, flaws = load_rubric(STORY), load_rubric(FLAWS)
    assert [c.id for c in story.criteria] == ["creativity", "coherence", "character_depth", "dialogue_quality",
                                              "visual_imagination", "conceptual_depth", "adaptability"]
    s = story.json_schema()["properties"]["coherence"]["properties"]["score"]
    assert s == {"type": "integer", "enum": [1, 2, 3, 4, 5], "minimum": 1, "maximum": 5}
    assert list(flaws.json_schema()["properties"]) == ["detected", "evidence", "reasoning"]
    assert "creativity (Creativity)" in story.system_text() and "5: " in story.system_text()


@pytest.mark.parametrize("edit, where", [
    (lambda d: d["criteria"][2]["anchors"].pop(4), "criteria.2 (character_depth): anchors must describe"),
    (lambda d: d["scale"].update(max="high"), "scale.max"),
    (lambda d: d.update(kind="verdicts"), ": kind:"),
    (lambda d: d["criteria"][0].update(id="Bad Id"), "criteria.0.id"),
    (lambda d: d.update(fields=["reasoning"]), "`fields` must hold `score`"),
    (lambda d: d.update(colour="blue"), "colour"),
])
def test_a_bad_rubric_names_the_file_and_the_field(tmp_path, edit, where):
    import yaml
    data = yaml.safe_load(STORY.read_text())
    edit(data)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_rubric(bad)
    assert str(bad) in str(e.value) and where in str(e.value)


def test_the_cli_refuses_a_missing_rubric_or_source_table_before_ray(tmp_path, capsys):
    from longsweep.cli import main
    src = story_source(tmp_path / "src", ["Once."])
    assert main(["judge", str(src), "--model", "smollm2-135m"]) == 2
    assert "--rubric" in capsys.readouterr().err
    assert main(["judge", str(src), "--rubric", str(FLAWS), "--model", "smollm2-135m"]) == 2
    assert "no reviews/ table" in capsys.readouterr().err
    assert main(["judge", str(src), "--rubric", str(STORY), "--model", "smollm2-135m", "--retry-errors=late"]) == 2
    assert "--retry-errors" in (err := capsys.readouterr().err) and "unknown error kind 'late'" in err


# ---- parsing -------------------------------------------------------------------------------------------

def test_answers_are_read_per_criterion_and_never_defaulted():
    r = load_rubric(STORY)
    full = {c.id: {"score": 3, "reasoning": "fine"} for c in r.criteria}
    assert all(j.score == 3 and j.error is None for j in parse_answer(json.dumps(full), r, "stop").values())
    cut = '{"creativity": {"score": 4, "reasoning": "vivid"}, "coherence": {"score": 2, "reasoning": "ok"}, "chara'
    got = parse_answer(cut, r, "length")
    assert (got["creativity"].score, got["coherence"].score) == (4, 2)
    assert got["adaptability"].score is None and "cut off at max_tokens" in got["adaptability"].error
    bad = {**full, "coherence": {"score": 9}, "creativity": {"score": True}, "adaptability": {"reasoning": "x"}}
    got = parse_answer(json.dumps(bad), r, "stop")
    assert "out of range 1-5" in got["coherence"].error and got["coherence"].score is None
    assert got["creativity"].score is None and got["adaptability"].error == "adaptability.score: missing"
    assert all(j.error == "no JSON object in the answer" for j in parse_answer("I like it. 5/5", r).values())


def test_flaw_answers_need_a_boolean():
    r = load_rubric(FLAWS)
    j = parse_answer('{"detected": true, "evidence": "the baseline is weak", "reasoning": "named"}', r)[FLAW]
    assert (j.detected, j.evidence, j.error) == (True, "the baseline is weak", None)
    assert parse_answer('{"detected": "no"}', r)[FLAW].detected is False
    assert "not true or false" in parse_answer('{"detected": "maybe"}', r)[FLAW].error


# ---- known flaws ---------------------------------------------------------------------------------------

def test_flaws_from_meta_json_and_from_a_pairs_csv(tmp_path):
    (tmp_path / "p1").mkdir()
    (tmp_path / "p1" / "meta.json").write_text(json.dumps({"flaws": ["A", " B "], "v2": {"context": "c"}}))
    (tmp_path / "p2").mkdir()
    (tmp_path / "p2" / "meta.json").write_text(json.dumps({"v2": {"context": "c"}}))
    assert flaws_from_meta(tmp_path, ["p1", "p2", "p3"]) == {"p1": ["A", "B"], "p2": [], "p3": []}
    (tmp_path / "p2" / "meta.json").write_text(json.dumps({"flaws": ["A", 3]}))
    with pytest.raises(ConfigError, match=r"p2/meta.json: flaws: expected a list"):
        flaws_from_meta(tmp_path, ["p2"])
    csv = tmp_path / "pairs.csv"  # the review seed's layout: flaw lists as Python literals, or JSON
    pd.DataFrame({"paperid": ["p1", "p2", "p3"], "v1_folder_path": ["a", "b", "c"],
                  "flaw_descriptions": [repr(["Leaks test data.", "No ablation."]), json.dumps(["Tiny sample."]),
                                        "not a list"]}).to_csv(csv, index=False)
    assert flaws_from_pairs(csv, ["p1", "p2"]) == {"p1": ["Leaks test data.", "No ablation."], "p2": ["Tiny sample."]}
    with pytest.raises(InputError, match=r"pairs.csv: row 3 \(line 4, paperid 'p3'\): flaw_descriptions"):
        flaws_from_pairs(csv, ["p1", "p3"])  # a bad row matters only when its paper is judged


# ---- the driver: fitting with exact counts, keys, error rows --------------------------------------------

def _plan(tmp_path, src, rubric, spec, **opts):
    job = JudgeJob(JudgeOptions(rubric=str(rubric), **opts), str(src))
    return job, job.make_items(spec, "t")


def test_story_items_fit_a_small_window_exactly_and_record_what_was_dropped(tmp_path, smollm, smol_tok):
    long = "\n\n".join(f"Paragraph {i}. The fox ran over the hill and the wind kept blowing. " * 6 for i in range(40))
    src = story_source(tmp_path / "src", ["The fox wanted to fly. " * 30, "She met an owl. " * 40, long], errors=2)
    spec = smollm.with_window(2048)
    job, planned = _plan(tmp_path, src, STORY, spec, runs=2, max_tokens=300, buffer=8)
    assert planned.extra["source error rows skipped"] == 2 and not planned.error_rows
    assert len(planned.items) == 6  # 3 responses x 2 judge runs
    by = {it.key: it for it in planned.items}
    third = by["fox/run1/writer/turn03/smollm2-135m/run2"]
    assert third.n_rows == 7 and third.group == "fox/run1/writer/smollm2-135m/run2"
    assert [r["key"] for r in third.payload["rows"]][:2] == ["fox/run1/writer/turn03/creativity/smollm2-135m/run2",
                                                            "fox/run1/writer/turn03/coherence/smollm2-135m/run2"]
    for it in planned.items:
        c = it.payload["columns"]
        n = len(smol_tok.encode_messages(it.payload["messages"]))
        assert n == c["context_tokens"] and n + 300 + 8 <= 2048
    c3 = third.payload["columns"]
    assert c3["response_tokens_dropped"] > 0 and c3["turns_dropped"] >= 1 and c3["turn"] == 3
    assert "omitted to fit the judge's context window" in third.payload["messages"][-1]["content"]
    first = by["fox/run1/writer/turn01/smollm2-135m/run1"].payload
    assert first["columns"]["response_tokens_dropped"] == 0 and len(first["messages"]) == 2  # system + judged
    second = by["fox/run1/writer/turn02/smollm2-135m/run1"].payload["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]  # turn 1 visible
    # a window too small for the rubric itself: one error row per criterion, each its own key
    job, planned = _plan(tmp_path, src, STORY, smollm.with_window(1024), max_tokens=300)
    assert not planned.items and len(planned.error_rows) == 21
    assert all(r["error_kind"] == "prompt_too_long" and r["error"] for r in planned.error_rows)
    assert planned.error_rows[0]["key"] == "fox/run1/writer/turn01/creativity/smollm2-135m/run1"
    assert {r["item_key"] for r in planned.error_rows[:7]} == {"fox/run1/writer/turn01/smollm2-135m/run1"}


def test_flaw_items_come_from_meta_json_or_the_pairs_csv(tmp_path, smollm):
    src = review_source(tmp_path / "src", [("p1", "v1"), ("p1", "v2"), ("p2", "v1")], errors=1)
    papers = tmp_path / "papers"
    for pid, fl in {"p1": ["Weak baseline.", "No ablation."], "p2": []}.items():
        (papers / pid).mkdir(parents=True)
        (papers / pid / "meta.json").write_text(json.dumps({"flaws": fl}))
    job, planned = _plan(tmp_path, src, FLAWS, smollm, papers_dir=str(papers))
    assert sorted(it.key for it in planned.items) == [f"p1/{v}/run1/reviewer/flaw{i:02d}/smollm2-135m/run1"
                                                     for v in ("v1", "v2") for i in (1, 2)]
    it = planned.items[0]
    assert it.payload["rows"][0]["flaw"] in ("Weak baseline.", "No ablation.") and it.n_rows == 1
    assert "Weaknesses:\n- The baseline is weak." in it.payload["messages"][-1]["content"]
    assert planned.extra["reviews without known flaws"] == 1 and planned.extra["source error rows skipped"] == 1
    csv = tmp_path / "pairs.csv"
    pd.DataFrame({"paperid": ["p2"], "v1_folder_path": ["p2"], "flaw_descriptions": [repr(["Tiny sample."])]}
                 ).to_csv(csv, index=False)
    job, planned = _plan(tmp_path, src, FLAWS, smollm, pairs_csv=str(csv))
    assert [it.key for it in planned.items] == ["p2/v1/run1/reviewer/flaw01/smollm2-135m/run1"]
    with pytest.raises(InputError, match="--papers-dir"):
        _plan(tmp_path, src, FLAWS, smollm)


# ---- the report on a judged folder written by hand --------------------------------------------------------

def _judged(folder: Path, rows: list[dict]) -> Path:
    full = [{"item_key": r["key"], "sweep_id": "t", "backend": "llama_cpp", "attempts": 1, "resets": 0,
             "error_kind": None if r["status"] == "ok" else "unparseable_judgment", **r} for r in rows]
    return write_table(folder, "judgments", JudgeJob.schema(), full)


def test_report_means_recall_paired_and_agreement_follow_the_rows(tmp_path):
    from longsweep.reporting.judge import build_judge_report, format_judge_text, write_judge_plots
    rows = []
    scores = {("a", 1): [4, 3], ("a", 2): [2, None], ("b", 1): [5, 5], ("b", 2): [1, 2]}
    for (seq, turn), runs in scores.items():
        for k, s in enumerate(runs, 1):
            for crit, shift in (("creativity", 0), ("coherence", 1)):
                rows.append({"key": f"{seq}/t{turn}/{crit}/j/run{k}", "model": "j", "rubric_kind": "scores",
                             "rubric": "story",
                             "status": "ok" if s else "error", "score": min(5, s + shift) if s else None,
                             "source_key": f"{seq}/t{turn}", "source_model": "w", "criterion": crit, "run": k,
                             "sequence_id": seq, "turn": turn})
    for p in range(4):
        for v in ("v1", "v2"):
            for i in (1, 2):
                det = (v == "v1") or (i == 1 and p % 2 == 0)
                rows.append({"key": f"p{p}/{v}/r/flaw{i:02d}/j/run1", "model": "j", "rubric_kind": "flaws",
                             "rubric": "flaws",
                             "status": "ok", "detected": det, "source_key": f"p{p}/{v}/r", "source_model": "w",
                             "criterion": f"flaw{i:02d}", "flaw_index": i, "run": 1, "paper_id": f"p{p}", "version": v})
    rows.append({"key": "p0/v2/r/flaw03/j/run1", "model": "j", "rubric_kind": "flaws", "rubric": "flaws",
                 "status": "error", "detected": None, "source_key": "p0/v2/r", "source_model": "w",
                 "criterion": "flaw03", "flaw_index": 3, "run": 1, "paper_id": "p0", "version": "v2"})
    rep = build_judge_report(_judged(tmp_path, rows))
    df = pd.read_parquet(tmp_path / "judgments")
    sc = {r["criterion"]: r for r in rep["scores"]}
    ok = df[(df.rubric_kind == "scores") & (df.status == "ok")]
    per_resp = ok.groupby(["criterion", "source_key"])["score"].mean().groupby("criterion")
    assert sc["creativity"]["mean"] == pytest.approx(per_resp.mean()["creativity"])
    assert sc["creativity"]["std"] == pytest.approx(per_resp.std()["creativity"])
    assert sc["creativity"]["n_errors"] == 1 and sc["creativity"]["n_rows"] == 7 and sc["creativity"]["n"] == 4
    assert sc["creativity"]["ci_low"] < sc["creativity"]["mean"] < sc["creativity"]["ci_high"]
    turn2 = [r for r in rep["scores_per_turn"] if r["criterion"] == "creativity" and r["turn"] == 2][0]
    assert turn2["mean"] == pytest.approx((2 + 1.5) / 2)
    rec = {r["version"]: r for r in rep["recall"]}
    fl = df[df.rubric_kind == "flaws"]
    for v in ("v1", "v2"):
        assert rec[v]["recall"] == pytest.approx(fl[fl.version == v]["detected"].astype(float).mean())
    assert rec["v1"]["recall"] == 1.0 and rec["v2"]["recall"] == 0.25 and rec["v2"]["n_errors"] == 1
    (paired,) = rep["paired"]["rows"]
    assert (rep["paired"]["base"], rep["paired"]["revised"]) == ("v1", "v2")
    assert paired["n"] == 4 and paired["mean_diff"] == pytest.approx(0.25 - 1.0)
    runs = {r["criterion"]: r for r in rep["agreement_runs"]}
    assert runs["creativity"]["n_raters"] == 2 and runs["creativity"]["n_complete"] == 3
    json.dumps(rep, allow_nan=False)  # JSON-ready as it is: no NaN, no numpy types
    text = format_judge_text(rep)
    assert "creativity" in text and "flaw recall" in text and "agreement across judge runs" in text
    names = {p.name for p in write_judge_plots(rep, tmp_path / "plots")}
    assert {"judge_scores.png", "judge_scores_per_turn.png", "flaw_recall.png", "flaw_recall_paired.png",
            "judge_agreement.png"} <= names


def test_a_scores_rubric_can_judge_reviews_too(tmp_path, smollm):
    rubric = tmp_path / "review_quality.yaml"
    rubric.write_text("""name: review-quality
kind: scores
source: reviews
instructions: You judge peer reviews.
scale: {min: 1, max: 3}
criteria:
  - {id: specific, name: Specific, question: "Are the weaknesses concrete?", anchors: {1: vague, 2: mixed, 3: concrete}}
  - {id: fair, name: Fair, question: "Is the tone fair?", anchors: {1: hostile, 2: mixed, 3: fair}}
fields: [score, evidence, reasoning]
sees: {review: raw}
max_tokens: 128
""")
    src = review_source(tmp_path / "src", [("p1", "v1")])
    job, planned = _plan(tmp_path, src, rubric, smollm, runs=2)
    assert [it.key for it in planned.items] == ["p1/v1/run1/reviewer/smollm2-135m/run1",
                                                "p1/v1/run1/reviewer/smollm2-135m/run2"]
    it = planned.items[0]
    assert [r["criterion"] for r in it.payload["rows"]] == ["specific", "fair"] and it.n_rows == 2
    assert it.payload["messages"][-1]["content"].startswith("The review you judge:\n{}")  # sees.review: raw
    assert it.payload["seed"] == 1000 and planned.items[1].payload["seed"] == 2000
    props = job.rubric.json_schema()["properties"]["fair"]["properties"]
    assert list(props) == ["score", "evidence", "reasoning"] and props["score"]["enum"] == [1, 2, 3]


def test_driver_error_rows_are_written_once_across_reruns(tmp_path, smollm):
    """Items that cannot fit are error rows decided on the driver (no Ray needed); a rerun finds them done."""
    from longsweep.runtime.sweep import RunSettings, run_job
    src = story_source(tmp_path / "src", ["Once.", "Twice."])
    job = JudgeJob(JudgeOptions(rubric=str(STORY), max_tokens=600), str(src))
    settings = RunSettings(sweep_dir=tmp_path / "judged", sweep_id="j")
    (first,) = run_job(job, [smollm.with_window(1024)], settings)
    (second,) = run_job(job, [smollm.with_window(1024)], settings)
    df = pd.read_parquet(tmp_path / "judged" / "judgments")
    assert len(df) == 14 and df["key"].is_unique and (df["error_kind"] == "prompt_too_long").all()
    assert (first.ran, second.skipped, second.ran) == (14, 14, 0)
