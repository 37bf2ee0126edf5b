"""Every bad input of a review sweep is one error row with a clear reason; the rest of the sweep goes on.

Real SmolLM2 on a local Ray. Ids with NUL cannot exist as file names, so `check_id` is covered
by tests/papers/test_ingest.py; here the sweep meets the files a user really has.
"""

import shutil

import pyarrow.parquet as pq
import pymupdf
import pytest
from helpers import run_one, write_bad_files

from longsweep.config import WorkerPolicy
from longsweep.jobs.review.options import ReviewOptions
from longsweep.papers.samples import make_paper_pdf
from longsweep.jobs.review import ReviewJob

pytestmark = pytest.mark.integration


def _bad_papers(root):
    good = root / "good"
    make_paper_pdf(good / "v1.pdf", title="A good paper", topic="graphs", seed=1)
    make_paper_pdf(good / "v2.pdf", title="A good paper", topic="graphs", seed=2)
    make_paper_pdf(root / "half" / "v1.pdf", title="Only v1", topic="trees", seed=3)  # v2 missing
    shutil.copy(good / "v1.pdf", root / "good.pdf")  # duplicate paper id, flat
    (root / "bad..id").mkdir()
    (root / "bad..id" / "v1.md").write_text("# x\n\ntext\n")
    write_bad_files(root)
    (root / "longline.md").write_text("# One line\n\n" + "word " * 1_000_000)  # a single 5 MB line
    doc = pymupdf.open()
    para = "This section describes the method in detail. " * 40
    for i in range(1000):
        doc.new_page().insert_textbox(pymupdf.Rect(50, 50, 550, 780), f"Page {i + 1}. {para}", fontsize=10)
    doc.save(root / "big.pdf")


def test_bad_inputs_are_error_rows_and_the_rest_is_reviewed(ray_local, smollm, tmp_path):
    papers = tmp_path / "papers"
    papers.mkdir()
    _bad_papers(papers)
    spec = smollm.with_window(1024)
    # one attempt per item: this test is about inputs, not review quality
    job = ReviewJob(ReviewOptions(runs=1, completion_reserve=160, versions=["v1", "v2"]), papers,
                    policy=WorkerPolicy(max_retries=0))
    s = run_one(job, spec, tmp_path / "out", sweep_id="bad", concurrency=(2, 2), batch_items=2)
    rows = pq.read_table(tmp_path / "out" / "reviews").to_pylist()
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 14
    by = {(r["paper_id"], r["version"]): r for r in rows}
    errors = {k: (r["error_kind"], r["error"]) for k, r in by.items() if r["attempts"] == 0}
    expected = {
        ("empty", "v1"): ("empty_file", "empty.pdf"), ("notpdf", "v1"): ("not_pdf", "notpdf.pdf"),
        ("corrupt", "v1"): ("corrupt_pdf", "corrupt.pdf"), ("encrypted", "v1"): ("encrypted", "encrypted.pdf"),
        ("imageonly", "v1"): ("no_text", "imageonly.pdf"), ("badutf8", "v1"): ("bad_utf8", "badutf8.md"),
        ("half", "v2"): ("bad_input", "version v2 is missing in half/"),
        ("good", "v1#dup1"): ("bad_input", "duplicate paper id 'good'"),
        ("bad..id", "v1"): ("bad_input", "unsafe paper id 'bad..id'"),
    }
    assert set(errors) == set(expected)
    for k, (kind, text) in expected.items():
        assert errors[k][0] == kind and text in errors[k][1], (k, errors[k])
        assert by[k]["status"] == "error"
    # the good, the huge and the one-line inputs reached the model, fitted by truncation
    for k in [("good", "v1"), ("good", "v2"), ("half", "v1"), ("big", "v1"), ("longline", "v1")]:
        r = by[k]
        assert r["attempts"] >= 1 and r["tokens_fitted"] <= r["budget_tokens"] and r["raw_content"] is not None, k
    assert by[("big", "v1")]["was_truncated"] and by[("big", "v1")]["tokens_full"] > 300_000
    assert by[("longline", "v1")]["was_truncated"] and by[("longline", "v1")]["tokens_full"] > 1_000_000
    assert s.rows == 14 and s.errors >= 9
