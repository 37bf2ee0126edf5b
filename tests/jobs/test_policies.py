"""Each job carries its own worker policy: reviews reset the model only on failure; stories keep the story
seed's reset after long answers. Real SmolLM2 on a real local Ray."""

import pyarrow.parquet as pq
import pytest

from helpers import run_one

pytestmark = pytest.mark.integration

SEQ = """sequences:
  - id: tale
    prompts:
      - {name: a, text: "Write a story about a lighthouse keeper."}
      - {name: b, text: "Continue the story."}
"""


def test_default_policies_differ_by_job():
    from longsweep.jobs.review import ReviewJob
    from longsweep.jobs.review.options import ReviewOptions
    from longsweep.jobs.stories import StoriesJob, StoryOptions
    assert ReviewJob(ReviewOptions(), "papers").policy().reset_after_chars is None
    assert StoriesJob(StoryOptions(), "s.yaml").policy().reset_after_chars == 5000  # the story seed's
    assert StoriesJob(StoryOptions(reset="never"), "s.yaml").policy().reset_after_chars is None


def test_long_review_answers_never_reset_the_model_but_long_story_answers_do(ray_local, smollm, tmp_path):
    from longsweep.jobs.review import ReviewJob
    from longsweep.jobs.review.options import ReviewOptions
    from longsweep.jobs.stories import StoriesJob, StoryOptions
    from longsweep.papers.samples import make_samples
    papers = make_samples(tmp_path / "papers", n_papers=1)
    opts = ReviewOptions(runs=2, completion_reserve=300, repetition_penalty=1.3, versions=["v1"])
    run_one(ReviewJob(opts, papers), smollm.with_window(2048), tmp_path / "rv")
    reviews = pq.read_table(tmp_path / "rv" / "reviews").to_pylist()
    accepted_first_time = [r for r in reviews if r["status"] == "ok" and r["attempts"] == 1]
    assert accepted_first_time, [r["error"] for r in reviews]
    # a review answer of any length resets nothing: the KV prefix of the paper stays for its next run
    assert all(r["resets"] == 0 for r in accepted_first_time)
    assert max(len(r["raw_content"]) for r in accepted_first_time) > 200

    # the same length of answer in a story with the seed's policy (threshold lowered to show it) resets
    f = tmp_path / "s.yaml"
    f.write_text(SEQ)
    sopts = StoryOptions(max_tokens=120, reset_after_chars=200, min_chars=1, repetition_penalty=1.2)
    run_one(StoriesJob(sopts, f), smollm, tmp_path / "st")
    turns = pq.read_table(tmp_path / "st" / "stories").to_pylist()
    long_turns = [r for r in turns if r["status"] == "ok" and len(r["response"]) > 200]
    assert long_turns and all(r["resets"] >= 1 for r in long_turns)
    short_turns = [r for r in turns if r["status"] == "ok" and r["attempts"] == 1 and len(r["response"]) <= 200]
    assert all(r["resets"] == 0 for r in short_turns)
