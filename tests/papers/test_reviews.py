from longsweep.papers.reviews import parse_review

SEA = """**Summary:**
The paper proposes a method.

**Strengths:**
- Clear writing.
- Strong results.

**Weaknesses:**
- Limited baselines.

**Questions:**
- Why this dataset?

**Soundness:**
3 good

**Presentation:**
4 excellent

**Contribution:**
2 fair

**Rating:**
6 marginally above the acceptance threshold

**Paper Decision:**
- Decision: Accept
- Reasons: solid work.
"""


def test_sea_markdown():
    r = parse_review(SEA)
    assert r.ok and r.format == "sea"
    assert r.strengths == ["Clear writing.", "Strong results."] and r.questions == ["Why this dataset?"]
    assert (r.soundness, r.presentation, r.contribution, r.rating, r.confidence) == (3, 4, 2, 6, None)
    assert r.decision == "Accept" and r.issues == []


def test_json_in_fence_with_trailing_prose():
    text = 'Here is my review:\n```json\n{"summary": "S", "strengths": ["a"], "weaknesses": "- b\\n- c", ' \
           '"questions": [], "soundness": 3, "presentation": "2", "contribution": 3, "rating": 7, ' \
           '"confidence": 4, "decision": "reject"}\n```\nHope this helps {not json}.'
    r = parse_review(text)
    assert r.ok and r.format == "json" and r.weaknesses == ["b", "c"] and r.presentation == 2
    assert r.decision == "Reject" and r.confidence == 4


def test_out_of_range_and_missing_are_reported_not_invented():
    r = parse_review('{"summary": "S", "rating": 11, "soundness": 0}')
    assert not r.ok and r.rating is None and r.soundness is None
    assert "rating: 11 out of range 1-10" in r.issues and "soundness: 0 out of range 1-4" in r.issues
    assert "rating: missing" in r.issues


def test_garbage_is_not_a_review():
    r = parse_review("lorem ipsum dolor")
    assert not r.ok and r.summary is None and r.issues
