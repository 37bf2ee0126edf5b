"""``export``: the review seed's files from a results folder, read back with the seed's own tools (jq, pandas)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longsweep.errors import InputError
from longsweep.reporting.export_seed import export_reviews
from longsweep.papers.formats import PARSED_FIELDS, get_format

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
# the columns of a review row that export reads, with the parsed ones of every format
SCHEMA = pa.schema([
    ("key", _S), ("model", _S), ("status", _S), ("error", _S), ("error_kind", _S), ("tokens_per_s", _F),
    ("paper_id", _S), ("version", _S), ("run", _I), ("was_truncated", _B), ("truncation_stages", pa.list_(_S)),
    ("tokens_full", _I), ("tokens_fitted", _I),
] + PARSED_FIELDS + [("raw_content", _S), ("parse_issues", pa.list_(_S))])
SEA_KEYS = ["summary", "strengths", "weaknesses", "questions", "soundness", "presentation", "contribution", "rating",
            "paper_decision"]
SEED_META = ["paper_id", "version", "run_id", "model_type", "success", "raw_content", "was_truncated"]


def _row(model, fmt, raw, paper, version, run, truncated, status="ok"):
    p = get_format(fmt).parse(raw)
    row = {"key": f"{paper}/{version}/run{run}/{model}", "model": model, "status": status, "paper_id": paper,
           "version": version, "run": run, "was_truncated": truncated, "truncation_stages": ["appendix"] * truncated,
           "tokens_full": 40000, "tokens_fitted": 28000 if truncated else 40000, "tokens_per_s": float("nan"),
           "raw_content": raw, "parse_issues": p.issues, **p.fields()}
    if status != "ok":
        row.update(error="unparseable review: rating: missing", error_kind="unparseable_review")
    return row


@pytest.fixture()
def sweep(tmp_path):
    sea = (FIX / "sea_e_output.md").read_text()
    rows = [_row("sea-e", "sea", sea, paper, version, run, truncated=(paper == "p1"))
            for paper in ("p1", "p2", "p3") for version in ("v1", "latest") for run in (1, 2)]
    rows.append(_row("sea-e", "sea", sea[:sea.index("**Rating:**")], "p4", "v1", 1, False, status="error"))
    (tmp_path / "reviews").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp_path / "reviews" / "part-0.parquet")
    return tmp_path


def test_export_writes_the_seed_layout_and_keys(sweep, tmp_path):
    out = tmp_path / "out"
    assert export_reviews(sweep, out) == 12  # the error row is left out
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.json"))
    assert files == sorted(f"{p}/{v}_review_run{k}.json" for p in ("p1", "p2", "p3") for v in ("v1", "latest")
                           for k in (0, 1))
    obj = json.loads((out / "p1" / "v1_review_run1.json").read_text())
    assert list(obj)[:len(SEA_KEYS) + len(SEED_META)] == SEA_KEYS + SEED_META
    assert obj["run_id"] == 1 and obj["run"] == 2 and obj["model_type"] == "SEA-E" and obj["success"] is True
    assert obj["rating"] == 6 and obj["soundness"] == 3 and len(obj["strengths"]) == 3
    assert obj["paper_decision"].startswith("- Decision: Accept") and obj["decision"] == "Accept"
    assert obj["was_truncated"] is True and obj["truncation_stages"] == ["appendix"]
    assert obj["tokens_per_s"] is None and obj["review_format"] == "sea"  # NaN is not JSON

    assert export_reviews(sweep, tmp_path / "all", include_errors=True) == 13
    err = json.loads((tmp_path / "all" / "p4" / "v1_review_run0.json").read_text())
    assert err["success"] is False and err["rating"] is None and err["error_kind"] == "unparseable_review"


def test_the_seed_docs_jq_and_pandas_snippets_read_the_export(sweep, tmp_path):
    out = tmp_path / "reviews_seae"
    export_reviews(sweep, out)
    # the seed's Python analysis: load */v1_review_run0.json into a DataFrame, count truncations
    import pandas as pd
    reviews = []
    for review_file in Path(out).glob("*/v1_review_run0.json"):
        with open(review_file) as f:
            reviews.append(json.load(f))
    df = pd.DataFrame(reviews)
    assert len(df) == 3 and df["was_truncated"].sum() == 1 and (~df["was_truncated"]).sum() == 2
    assert f"{df['was_truncated'].mean():.1%}" == "33.3%"
    truncated, full = df[df["was_truncated"]], df[~df["was_truncated"]]
    assert truncated["rating"].mean() == 6 and full["rating"].mean() == 6
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: its part of the seed's snippets is not checked")
    one = subprocess.run(["jq", ".was_truncated", str(out / "p1" / "v1_review_run0.json")], capture_output=True,
                         text=True, check=True)
    assert one.stdout.strip() == "true"
    count = subprocess.run(f"jq -r '.was_truncated' {out}/*/v1_review_run0.json | grep -c true", shell=True,
                           capture_output=True, text=True, check=True)
    assert count.stdout.strip() == "1"
    mt = subprocess.run(f"jq -r '.model_type' {out}/p2/latest_review_run1.json", shell=True, capture_output=True,
                        text=True, check=True)
    assert mt.stdout.strip() == "SEA-E"


def test_cyclereviewer_export_keeps_the_seeds_reviewers_list(tmp_path):
    raw = (FIX / "cyclereviewer_output.md").read_text()
    (tmp_path / "reviews").mkdir()
    rows = [_row("cyclereviewer-8b", "cyclereviewer", raw, "p1", "v1", 1, False)]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp_path / "reviews" / "a.parquet")
    assert export_reviews(tmp_path, tmp_path / "out") == 1
    obj = json.loads((tmp_path / "out" / "p1" / "v1_review_run0.json").read_text())
    assert list(obj)[:5] == ["reviewers", "meta_review", "justification_for_why_not_higher_score",
                             "justification_for_why_not_lower_score", "paper_decision"]
    assert obj["model_type"] == "CycleReviewer" and [r["rating"] for r in obj["reviewers"]] == [6, 5, 6, 8]
    assert obj["reviewers"][2]["flag_for_ethics_review"].startswith("Yes") and obj["rating_mean"] == 6.25


def test_a_folder_without_a_reviews_table_is_refused_in_one_line(tmp_path):
    stories = tmp_path / "stories-sweep"
    (stories / "stories").mkdir(parents=True)
    pq.write_table(pa.table({"key": ["s1/run1/t1"], "sequence_id": ["s1"], "turn": [1]}),
                   stories / "stories" / "part-0.parquet")
    with pytest.raises(InputError, match=r"not a review sweep.*its tables: stories") as e:
        export_reviews(stories, tmp_path / "out")
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="no such results folder"):
        export_reviews(tmp_path / "missing", tmp_path / "out")
    cli = subprocess.run([sys.executable, "-m", "longsweep.cli", "export", str(stories), "--to", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert cli.stderr.strip().count("\n") == 0 and "not a review sweep" in cli.stderr
