"""Each job carries its own worker policy: reviews reset the model only on failure; stories keep the story
seed's reset after long answers. Real SmolLM2 on a real local Ray (the shared sweep)."""

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration


def test_default_policies_differ_by_job():
    from longsweep.jobs.review import ReviewJob
    from longsweep.jobs.review.options import ReviewOptions
    from longsweep.jobs.stories import StoriesJob, StoryOptions
    assert ReviewJob(ReviewOptions(), "papers").policy().reset_after_chars is None
    assert ReviewJob(ReviewOptions(), "papers").policy().max_retries == 2  # review.yaml's max_retries
    assert ReviewJob(ReviewOptions(max_retries=0), "papers").policy().max_retries == 0
    assert StoriesJob(StoryOptions(), "s.yaml").policy().reset_after_chars == 5000  # the story seed's
    assert StoriesJob(StoryOptions(reset="never"), "s.yaml").policy().reset_after_chars is None


def test_long_review_answers_never_reset_the_model_but_long_story_answers_do(shared_sweep):
    """The shared sweep (tests/shared_sweeps.py): reviews with the review policy; stories with the story
    seed's reset after long answers, its threshold lowered to 200 characters."""
    reviews = pq.read_table(shared_sweep / "reviews").to_pylist()
    accepted_first_time = [r for r in reviews if r["status"] == "ok" and r["attempts"] == 1]
    assert accepted_first_time, [r["error"] for r in reviews]
    # a review answer of any length resets nothing: the KV prefix of the paper stays for its next run
    assert all(r["resets"] == 0 for r in accepted_first_time)
    assert max(len(r["raw_content"]) for r in accepted_first_time) > 200

    # the same length of answer in a story with the seed's policy resets
    turns = pq.read_table(shared_sweep / "stories").to_pylist()
    long_turns = [r for r in turns if r["status"] == "ok" and len(r["response"]) > 200]
    assert long_turns and all(r["resets"] >= 1 for r in long_turns)
    short_turns = [r for r in turns if r["status"] == "ok" and r["attempts"] == 1 and len(r["response"]) <= 200]
    assert all(r["resets"] == 0 for r in short_turns)
