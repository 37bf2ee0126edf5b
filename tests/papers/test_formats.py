"""Reviewer formats: registry, messages, and each parser on whole, varied and cut-off answers."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from longsweep.errors import InputError
from longsweep.papers.formats import (FORMAT_NAMES, PARSED_FIELDS, PARSED_NAMES, REVIEWER_FIELDS, format_for_model,
                                      get_format)
from longsweep.papers.formats.sea import RATING_LABELS

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
SEA_E = (FIX / "sea_e_output.md").read_text()
CYCLE = (FIX / "cyclereviewer_output.md").read_text()
CRITICAL = {
    "summary": "The paper proposes sliced kernel flows for generative modelling.",
    "strengths_and_weaknesses": "## Strengths\n\n1. **Speed**: near-linear time.\n2. Clear proofs.\n\n"
                                "## Weaknesses\n\n1. Only small image datasets.\n2. No comparison with diffusion "
                                "models.\n3. The kernel parameter is not studied.",
    "questions": "1. How does it scale?\n2. What is the memory cost?",
    "limitations_and_societal_impact": "Misuse for synthetic media is not discussed.",
    "soundness": 3, "presentation": 2, "contribution": 3, "overall_score": 6, "confidence": 4,
}


def test_registry_names_aliases_and_guesses():
    assert set(FORMAT_NAMES) == {"sea", "cyclereviewer", "criticalneurips", "json"}
    assert get_format("SEA-E").name == "sea" and get_format("CycleReviewer").name == "cyclereviewer"
    assert get_format("CriticalNeurIPS").name == "criticalneurips" and get_format("default").name == "json"
    with pytest.raises(InputError, match="unknown review format 'nope'"):
        get_format("nope")
    guesses = {"WestlakeNLP/CycleReviewer-ML-Llama3.1-8B": "cyclereviewer", "ECNU-SEA/SEA-E": "sea",
               "sea-e": "sea", "my-critical_neurips-70b": "criticalneurips", "research-llm-7b": "json",
               "smollm2-135m": "json", "overseas-model": "json"}
    assert {m: format_for_model(m).name for m in guesses} == guesses
    assert format_for_model("ECNU-SEA/SEA-E", "json").name == "json"  # an explicit family wins


def test_parsed_columns_fit_their_arrow_types_for_every_format():
    answers = {"sea": SEA_E, "cyclereviewer": CYCLE, "criticalneurips": json.dumps(CRITICAL),
               "json": '{"summary": "S", "strengths": ["a"], "rating": 7, "decision": "reject"}'}
    assert len(set(PARSED_NAMES)) == len(PARSED_FIELDS)
    rows, reviewers = [], []
    for name, text in answers.items():
        p = get_format(name).parse(text)
        assert p.ok, (name, p.issues)
        assert list(p.fields()) == list(PARSED_NAMES) and p.fields()["review_format"] == name
        rows.append(p.fields())
        reviewers += p.reviewers()
    table = pa.Table.from_pylist(rows, schema=pa.schema(PARSED_FIELDS))  # raises on a wrong type
    assert table.column("rating").to_pylist() == [6, 6, 6, 7]
    rtable = pa.Table.from_pylist(reviewers, schema=pa.schema(REVIEWER_FIELDS))
    assert rtable.num_rows == 4 and [list(r) for r in reviewers[:1]] == [[n for n, _ in REVIEWER_FIELDS]]


def test_sea_messages_put_the_instruction_in_the_system_message():
    fmt = get_format("sea")
    msgs = fmt.messages("PAPER TEXT", version="v2", context="a flaw", captions=["Fig 1: a plot"],
                        images=["Figure 1: <image> a plot"])
    assert [m["role"] for m in msgs] == ["system", "user"]
    system, user = msgs[0]["content"], msgs[1]["content"]
    for head in ("**Summary:**", "**Strengths:**", "**Weaknesses:**", "**Questions:**", "**Soundness:**",
                 "**Presentation:**", "**Contribution:**", "**Rating:**", "**Paper Decision:**",
                 "- Decision: Accept or Reject", "- Reasons:"):
        assert head in system
    assert all(f"{n} {lab}" in system for n, lab in RATING_LABELS.items())
    assert "1 poor" in system and "4 excellent" in system
    assert user.startswith("PAPER TEXT\n\n") and "Paper version: v2" in user and "a flaw" in user
    assert "<image>" in user and "**Summary:**" not in user
    mine = fmt.messages("PAPER TEXT", system_prompt="SEA's own instruction")
    assert mine == [{"role": "system", "content": "SEA's own instruction"}, {"role": "user", "content": "PAPER TEXT"}]


def test_json_messages_keep_their_layout_and_schemas_bound_every_integer():
    msgs = get_format("json").messages("PAPER", version="v1")
    assert msgs[1]["content"].startswith("Paper:\n\nPAPER\n\nPaper version: v1\n\nAnswer with one JSON object")
    for name in ("json", "criticalneurips"):
        schema = get_format(name).json_schema
        ints = {k: v for k, v in schema["properties"].items() if v["type"] == "integer"}
        assert len(ints) == 5 and all(v["enum"] == list(range(1, max(v["enum"]) + 1)) for v in ints.values())
        assert set(schema["required"]) == set(schema["properties"])
    assert get_format("sea").json_schema is None and get_format("cyclereviewer").json_schema is None


def test_real_sea_e_output_parses_into_every_field():
    p = get_format("sea").parse(SEA_E)
    assert p.ok and p.issues == []
    assert p.summary.startswith("The paper studies how to schedule") and p.summary.endswith("warm-up phase.")
    assert len(p.strengths) == 3 and len(p.weaknesses) == 3 and len(p.questions) == 3
    assert p.questions[2] == "Can the authors report wall-clock time for the language modelling runs?"
    assert (p.soundness, p.presentation, p.contribution, p.rating, p.confidence) == (3, 3, 2, 6, None)
    assert p.decision == "Accept"
    reasons = p.fields()["decision_reasons"]
    assert reasons.startswith("The paper gives a simple") and reasons.endswith("outweighs these limitations.")
    assert "</s>" not in reasons and p.seed_fields["paper_decision"].startswith("- Decision: Accept")


@pytest.mark.parametrize("cut_after,ok,missing", [
    ("**Contribution:**", False, ["contribution: missing", "rating: missing", "decision: missing"]),
    ("**Rating:**\n\n6", True, ["decision: missing"]),
    ("- Decision: Accept", True, []),
])
def test_sea_output_cut_off_keeps_what_it_has(cut_after, ok, missing):
    text = SEA_E[:SEA_E.index(cut_after) + len(cut_after)]
    p = get_format("sea").parse(text)
    assert p.ok is ok and p.issues == missing
    assert p.summary and len(p.strengths) == 3 and p.soundness == 3


def test_sea_variants_numbered_inline_and_labels_only():
    text = ("## Summary:\nShort.\n\n**Strengths:**\n1. One\n2. Two\n   continued\n\n**Weaknesses:**\n* W\n\n"
            "**Questions:**\n• Q?\n\n**Soundness:** good\n**Presentation:** The paper is clear.\n"
            "**Contribution:** 5 excellent\n**Rating:** 7: accept, but needs minor improvements\n\n"
            "**Paper Decision:**\nReject, as the evidence is thin.")
    p = get_format("sea").parse(text)
    assert p.strengths == ["One", "Two continued"] and p.weaknesses == ["W"] and p.questions == ["Q?"]
    assert (p.soundness, p.presentation, p.contribution, p.rating) == (3, None, None, 7)
    assert "presentation: no score in 'The paper is clear.'" in p.issues
    assert "contribution: 5 out of range 1-4" in p.issues and not p.ok and p.decision == "Reject"


def test_cyclereviewer_output_gives_four_reviewers_and_their_means():
    p = get_format("cyclereviewer").parse(CYCLE)
    assert p.ok and p.issues == []
    rv = p.reviewers()
    assert [r["reviewer"] for r in rv] == [1, 2, 3, 4]
    assert [r["rating"] for r in rv] == [6, 5, 6, 8] and [r["confidence"] for r in rv] == [4, 3, 3, 2]
    assert [r["ethics_flag"] for r in rv] == [False, False, True, False]
    assert rv[1]["strengths"] == ["The idea is easy to implement and the writing is clear."]
    f = p.fields()
    assert (f["soundness"], f["presentation"], f["contribution"], f["rating"], f["confidence"]) == (3, 3, 3, 6, 3)
    assert f["rating_mean"] == 6.25 and f["n_reviewers"] == 4 and f["ethics_flag"] is True
    assert f["decision"] == "Accept" and f["summary"] == rv[0]["summary"] and len(f["weaknesses"]) == 5
    assert f["meta_review"].startswith("The reviewers find") and f["why_not_lower"].startswith("The method")
    assert p.seed_fields["paper_decision"] == "Accept (poster)" and len(p.seed_fields["reviewers"]) == 4


def test_cyclereviewer_cut_off_after_two_reviewers():
    text = CYCLE[:CYCLE.index("### Rating", CYCLE.index("## Reviewer", 10))]  # reviewer 2 loses its rating
    p = get_format("cyclereviewer").parse(text)
    assert p.ok and p.fields()["n_reviewers"] == 2 and p.rating == 6 and p.fields()["rating_mean"] == 6.0
    for issue in ("reviewers: 2 found, 4 expected", "reviewer 2: rating: missing", "reviewer 2: confidence: missing",
                  "meta review: missing", "decision: missing"):
        assert issue in p.issues
    assert p.decision is None  # never derived from the scores


def test_cyclereviewer_small_checkpoint_layout_and_looping_decision():
    one = ("## Summary\n\nS{n}.\n\n## Soundness\n\n2 fair\n\n## Presentation\n\n3 good\n\n## Contribution\n\n2 fair\n\n"
           "## Strengths\n\n- s\n\n## Weaknesses\n\n- w\n\n## Questions\n\n- q\n\n## Flag For Ethics Review\n\n"
           "No ethics review needed.\n\n## Rating\n\n{r}: reject\n\n## Confidence\n\n4: confident\n\n")
    text = "**********\n".join([one.format(n=1, r=3), one.format(n=2, r=4), "## Meta Review\n\nWeak.\n\n",
                                "## Paper Decision\n\nReject\n\n", "## Paper Decision\n\nReject\n\n"])
    p = get_format("cyclereviewer").parse(text)
    assert p.ok and [r["summary"] for r in p.reviewers()] == ["S1.", "S2."] and p.rating == 4  # 3.5 rounds up
    assert p.decision == "Reject" and "paper decision repeated 2 times, first kept" in p.issues


def test_criticalneurips_json_and_its_aliases():
    p = get_format("criticalneurips").parse("```json\n" + json.dumps(CRITICAL) + "\n```")
    assert p.ok and p.issues == []
    assert p.strengths == ["**Speed**: near-linear time.", "Clear proofs."] and len(p.weaknesses) == 3
    assert p.questions == ["How does it scale?", "What is the memory cost?"] and p.rating == 6
    assert p.fields()["limitations"].startswith("Misuse") and p.decision is None
    assert list(p.seed_fields)[:4] == ["summary", "strengths_and_weaknesses", "questions",
                                       "limitations_and_societal_impact"]
    short = {**CRITICAL, "overall": 8, "limitations": "None."}
    del short["overall_score"], short["limitations_and_societal_impact"]
    q = get_format("criticalneurips").parse(json.dumps(short))
    assert q.ok and q.rating == 8 and q.fields()["limitations"] == "None."


def test_criticalneurips_cut_off_inside_a_string():
    text = json.dumps(CRITICAL, indent=1)
    p = get_format("criticalneurips").parse(text[:text.index("memory cost")])
    assert not p.ok and p.summary == CRITICAL["summary"] and len(p.weaknesses) == 3
    assert p.questions == ["How does it scale?", "What is the"]
    assert any(i.startswith("output cut off") for i in p.issues)
    assert {"soundness: missing", "rating: missing", "confidence: missing"} <= set(p.issues)


@pytest.mark.parametrize("cut,expect_rating,ok", [
    ('"weaknesses": ["w1", "w2', None, False),
    ('"rating": 1', None, False),          # "1" may be the start of "10": not taken
    ('"rating": 10,', 10, True),
    ('"rating": 10, "confidence": 4, "deci', 10, True),
])
def test_json_cut_off_keeps_complete_fields(cut, expect_rating, ok):
    full = ('{"summary": "A method.", "strengths": ["s"], "weaknesses": ["w1", "w2"], "questions": [], '
            '"soundness": 3, "presentation": 3, "contribution": 2, "rating": 10, "confidence": 4, "decision": "Accept"}')
    text = full[:full.index(cut) + len(cut)]
    p = get_format("json").parse(text)
    assert p.summary == "A method." and p.rating == expect_rating and p.ok is ok
    assert any(i.startswith("output cut off") for i in p.issues) and "decision: missing" in p.issues
    if cut.startswith('"weaknesses"'):
        assert p.weaknesses == ["w1", "w2"] and "soundness: missing" in p.issues
