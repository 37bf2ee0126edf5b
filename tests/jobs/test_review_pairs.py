"""Paper pairs in the review seed's layout: a pairs CSV with folder paths and flaw lists, markdown papers
with figures under ``structured_paper_output/``. The reading is checked row by row; then the whole CSV is
reviewed by SmolLM2 on a real local Ray, with and without ``--flaw-context``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from longsweep.cli import main
from longsweep.errors import InputError
from longsweep.jobs.review import ReviewJob
from longsweep.jobs.review.options import ReviewOptions
from longsweep.papers.ingest import ingest
from longsweep.papers.pairs import find_paper_file, parse_flaw_list, read_pairs, read_pairs_file

FLAWS_A = ["The method is evaluated on two small datasets only.", "Baselines were not tuned."]
FLAWS_B = ["The speed-up comes from a single run on one machine; it's not repeated."]
PAPER = ("# {title}\n\n## Abstract\n\nWe study {topic}. Results improve on standard benchmarks.\n\n"
         "## Method\n\nWe {method}.\n\n![Figure 1: {caption}](images/fig1.png)\n\n## Experiments\n\n"
         "{exp}\n\n## Conclusion\n\nThe method works{end}.\n")
TEXTS = {
    "pA": dict(title="Pruning Graphs Before Message Passing", topic="edge pruning for graph networks",
               method="drop edges whose attention weight is below a threshold", caption="Accuracy against edges kept",
               exp="We test on Cora and Citeseer. Baselines use their default settings."),
    "pB": dict(title="Exact Token Budgets for Long Prompts", topic="exact token counting",
               method="count tokens with the model's own tokenizer", caption="Time to prepare a prompt",
               exp="On one laptop, in a single run, prompts were prepared 1.8 times faster."),
}


def _png() -> bytes:
    import pymupdf
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 32, 16), False)
    pix.clear_with(200)
    return pix.tobytes("png")


def _version(folder: Path, pid: str, version: str) -> None:
    out = folder / "structured_paper_output"
    (out / "images").mkdir(parents=True)
    end = "; a limitations section was added" if version == "latest" else ""
    (out / "paper.md").write_text(PAPER.format(**TEXTS[pid], end=end))
    (out / "images" / "fig1.png").write_bytes(_png())
    (folder / "notes.md").write_text("converter notes, not the paper")  # paper.md under a subfolder wins


def seed_layout(root: Path) -> Path:
    """``root/data/pairs/filtered_pairs.csv`` and its version folders: pA with paths relative to the CSV and
    a JSON flaw list, pB with absolute paths (under the CSV's folder) and a Python-repr list, pC with a flaw
    list that cannot be read. (Paths as the seed writes them, relative to ``root``, need ``--papers-root``:
    tests/unit/test_paths_and_leftovers.py.)"""
    pairs = root / "data" / "pairs"
    for pid in ("pA", "pB", "pC"):
        for v, suffix in (("v1", "v1"), ("latest", "")):
            _version(pairs / v / f"{pid}_2310_0001{suffix}", pid if pid != "pC" else "pA", v)
    rows = [
        {"paperid": "pA", "title": "Pruning Graphs", "v1_folder_path": "v1/pA_2310_0001v1",
         "latest_folder_path": "latest/pA_2310_0001", "flaw_descriptions": json.dumps(FLAWS_A)},
        {"paperid": "pB", "title": "Token Budgets", "v1_folder_path": str(pairs / "v1/pB_2310_0001v1"),
         "latest_folder_path": str(pairs / "latest/pB_2310_0001"), "flaw_descriptions": repr(FLAWS_B)},
        {"paperid": "pC", "title": "Broken", "v1_folder_path": "v1/pC_2310_0001v1",
         "latest_folder_path": "latest/pC_2310_0001", "flaw_descriptions": "['an unclosed list"},
    ]
    path = pairs / "filtered_pairs.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory) -> Path:
    return seed_layout(tmp_path_factory.mktemp("seed"))


def test_flaw_lists_json_and_python_repr_and_what_is_refused():
    assert parse_flaw_list(json.dumps(FLAWS_A)) == FLAWS_A
    assert parse_flaw_list(repr(FLAWS_B)) == FLAWS_B  # a repr with an apostrophe: double quotes, not JSON
    assert parse_flaw_list("") == [] and parse_flaw_list("[]") == []
    for bad in ("['unclosed", "{'a': 1}", "[1, 2]", "['ok', '  ']", "nan", "__import__('os')"):
        with pytest.raises(ValueError):
            parse_flaw_list(bad)


def test_rows_read_with_flaws_folders_and_the_broken_row_named(pairs_csv):
    got = {(e.paper_id, e.version): e for e in read_pairs(pairs_csv)}
    assert set(got) == {(p, v) for p in ("pA", "pB", "pC") for v in ("v1", "latest")}
    for pid, flaws in (("pA", FLAWS_A), ("pB", FLAWS_B)):
        for v in ("v1", "latest"):
            e = got[(pid, v)]
            assert e.error is None and e.flaws == tuple(flaws) and e.row in (1, 2)
            assert e.path.name == "paper.md" and e.path.parent.name == "structured_paper_output"
            assert dict(e.meta) == {"title": "Pruning Graphs" if pid == "pA" else "Token Budgets"}
    for v in ("v1", "latest"):
        err = got[("pC", v)].error
        assert got[("pC", v)].path is None and "row 3" in err and "line 4" in err and "flaw_descriptions" in err
    # figures resolve relative to the markdown file
    doc = ingest(got[("pA", "v1")].path)
    assert len(doc.figures) == 1 and doc.figures[0].path and Path(doc.figures[0].path).is_file()


def test_version_folder_search_order(tmp_path):
    d = tmp_path / "paper"
    (d / "deep" / "er").mkdir(parents=True)
    (d / "deep" / "er" / "paper.md").write_text("x")
    (d / "a.md").write_text("x")
    assert find_paper_file(d) == d / "deep" / "er" / "paper.md"  # paper.md under any subfolder first
    (d / "deep" / "er" / "paper.md").unlink()
    assert find_paper_file(d) == d / "a.md"  # then the shallowest *.md
    (d / "a.md").unlink()
    (d / "README.md").write_text("x")
    assert find_paper_file(d) is None
    (d / "deep" / "v.pdf").write_bytes(b"%PDF")
    assert find_paper_file(d) == d / "deep" / "v.pdf"


def test_bad_rows_and_bad_files(tmp_path):
    seed_layout(tmp_path)
    p = tmp_path / "x.csv"
    p.write_text("paperid,v1_folder_path,latest_folder_path,flaw_descriptions\n"
                 "ok1,data/pairs/v1/pA_2310_0001v1,data/pairs/latest/pA_2310_0001,[]\n"
                 ",a,b,[]\n"
                 "../up,a,b,[]\n"
                 "ok1,a,b,[]\n"
                 "gone,nowhere,data/pairs/latest/pA_2310_0001,[]\n"
                 "extra,a,b,[],surplus\n")
    got = read_pairs(p)
    errs = {e.paper_id + "/" + e.version: e.error for e in got if e.error}
    assert [e.version for e in got if not e.error] == ["v1", "latest", "latest"]
    assert "column paperid is empty" in errs["#row-2/v1"] and "unsafe paper id" in errs["#row-3/latest"]
    assert "repeats row 1" in errs["ok1/v1#row4"] and "'nowhere' not found" in errs["gone/v1"]
    assert "more field(s) than the header" in errs["#row-6/v1"]
    assert len(got) == 12  # every row, both versions: nothing dropped
    assert all(e.version.startswith("latest") for e in read_pairs(p, versions=["latest"]))
    cols = read_pairs(p, columns={"first": "v1_folder_path"})
    assert {e.version.split("#")[0] for e in cols} == {"first"}
    for text, msg in (("paperid,x\np,1\n", "no version columns"), ("title,v1_folder_path\nt,a\n", "no paperid column"),
                      ("paperid,v1_folder_path\n", "no rows")):
        p.write_text(text)
        with pytest.raises(InputError, match=msg):
            read_pairs_file(p)
    with pytest.raises(InputError, match="--versions v2"):
        read_pairs(tmp_path / "data" / "pairs" / "filtered_pairs.csv", versions=["v2"])


def test_flaws_reach_the_prompt_only_with_flaw_context(pairs_csv, smollm):
    from longsweep.jobs.review.driver import prepare_all
    spec = smollm.with_window(2048)
    for on in (False, True):
        job = ReviewJob(ReviewOptions(pairs_csv=str(pairs_csv), flaw_context=on, completion_reserve=128), None)
        prepared = prepare_all(job.papers(), spec, job.options, use_ray=False)
        for p in prepared:
            rec = p["record"]
            if rec.error:
                assert rec.paper_id == "pC" and "flaw_descriptions" in rec.error
                continue
            text = json.dumps(p["messages"])
            flaws = FLAWS_A if rec.paper_id == "pA" else FLAWS_B
            assert rec.n_known_flaws == len(flaws) and rec.flaw_context is on
            assert all((json.dumps(f)[1:-1] in text) is on for f in flaws)
            assert p["meta"]["known_flaws"] == flaws and p["meta"]["csv_row"] in (1, 2)


def test_inputs_refused_before_ray(pairs_csv, tmp_path):
    with pytest.raises(InputError, match="not both"):
        ReviewJob(ReviewOptions(pairs_csv=str(pairs_csv)), str(tmp_path)).check_inputs()
    with pytest.raises(InputError, match="papers folder"):
        ReviewJob(ReviewOptions(), None).check_inputs()
    no_flaws = tmp_path / "nf.csv"
    no_flaws.write_text("paperid,v1_folder_path\np,x\n")
    with pytest.raises(InputError, match="no flaw_descriptions column"):
        ReviewJob(ReviewOptions(flaw_context=True), str(no_flaws)).check_inputs()  # a .csv in place of a folder
    assert main(["review", "--pairs-csv", str(tmp_path / "missing.csv"), "--model", "smollm2-135m"]) == 2


@pytest.mark.integration
def test_pairs_csv_reviewed_on_ray_with_and_without_flaw_context(ray_local, smollm, pairs_csv, tmp_path):
    cfg = tmp_path / "review.yaml"
    # one attempt per review (seeded: 3 of the 4 parse at the first): the property is the CSV's path
    cfg.write_text("completion_reserve: 128\nrepetition_penalty: 1.3\ntemperature: 0.7\nmax_retries: 0\n")
    keys = {f"{p}/{v}/run1/smollm2-135m" for p in ("pA", "pB", "pC") for v in ("v1", "latest")}
    for on in (False, True):
        out = tmp_path / f"sweep-{on}"
        args = ["review", "--pairs-csv", str(pairs_csv), "--model", "smollm2-135m", "--window", "2048",
                "--actors", "1", "--config", str(cfg), "--out", str(out)] + (["--flaw-context"] if on else [])
        assert main(args) == 1  # the broken row's error rows
        rows = pq.read_table(out / "reviews").to_pylist()
        assert len(rows) == 6 and {r["key"] for r in rows} == keys
        for r in rows:
            if r["paper_id"] == "pC":
                assert r["status"] == "error" and r["error_kind"] == "bad_input"
                assert "row 3" in r["error"] and "flaw_descriptions" in r["error"] and r["flaw_context"] is None
                assert r["source_path"] is None
                continue
            src = Path(r["source_path"])  # the file reviewed, resolved: that paper's, that version's
            assert src.is_file() and src.parts[-4:-2] == (r["version"], f"{r['paper_id']}_2310_0001" +
                                                          ("v1" if r["version"] == "v1" else ""))
            assert r["raw_content"] and r["error_kind"] not in ("bad_input", "engine_error"), r["error"]
            assert r["n_known_flaws"] == (2 if r["paper_id"] == "pA" else 1) and r["flaw_context"] is on
            assert r["n_figures"] == 1 and not r["was_truncated"]
        assert sum(r["status"] == "ok" for r in rows) >= 1, [r["error"] for r in rows]
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["config"]["pairs_csv"] == str(pairs_csv)
        assert manifest["config"]["options"]["flaw_context"] is on
