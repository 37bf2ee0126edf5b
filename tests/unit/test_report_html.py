"""``report --html`` and ``view`` on small hand-written tables (no Ray, no model): the page loads nothing,
its plots are data URIs, model text is escaped, a judged folder's scores join the story turns, errors are
grouped by kind with examples, the cap says how many items are left out, and ``view`` rebuilds on reload."""

import json
import re
import shutil
import threading
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longsweep.cli import main

EVIL = "<script>alert(1)</script>"


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside each <script>."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag == "script"
        if self._in:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in = self._in and tag != "script"

    def handle_data(self, data):
        if self._in:
            self.scripts[-1] += data


def parse(text: str) -> Tags:
    t = Tags()
    t.feed(text)
    return t


def _write(folder: Path, table: str, rows: list[dict], name: str = "part-0.parquet") -> None:
    (folder / table).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / table / name)


def _review(paper, version, run, rating, *, raw="**Summary:** fine.", status="ok", truncated=False):
    row = {"key": f"{paper}/{version}/run{run}/m", "item_key": f"{paper}/{version}/run{run}/m", "model": "m",
           "status": status, "error": None, "error_kind": None, "attempts": 1, "resets": 0, "paper_id": paper,
           "version": version, "run": run, "was_truncated": truncated, "truncation_stages": ["appendix"] * truncated,
           "tokens_full": 3000, "tokens_fitted": 1500 if truncated else 3000, "rating": rating, "soundness": 3,
           "presentation": 2, "contribution": 3, "confidence": None, "decision": "Accept", "raw_content": raw,
           "parse_issues": [], "tokens_per_s": 50.0, "latency_s": 1.0, "completion_tokens": 100,
           "finished_at": "2026-12-01T10:00:00+00:00"}
    if status != "ok":
        row.update(error="unparseable review: rating: missing", error_kind="unparseable_review", rating=None)
    return row


def _story(seq, turn, text):
    return {"key": f"{seq}/run1/t{turn}/m", "item_key": f"{seq}/run1/m", "model": "m", "status": "ok",
            "error": None, "error_kind": None, "attempts": 1, "resets": 0, "sequence_id": seq, "run": 1, "turn": turn,
            "prompt_name": f"t{turn}", "prompt": f"Write turn {turn}.", "response": text, "completion_tokens": 40,
            "context_tokens": 100 * turn, "tokens_dropped": 50 if turn == 3 else 0, "turns_dropped": int(turn == 3),
            "tokens_per_s": 30.0, "latency_s": 1.0, "finished_at": "2026-12-01T10:00:00+00:00"}


def _judgment(story, crit, score, run=0):
    return {"key": f"{story['key']}/{crit}/run{run}/judge", "model": "judge", "status": "ok", "error": None,
            "error_kind": None, "rubric_kind": "scores", "rubric": "story", "source_key": story["key"],
            "source_model": "m", "criterion": crit, "score": score, "detected": None, "run": run,
            "sequence_id": story["sequence_id"], "turn": story["turn"], "reasoning": "ok " + EVIL,
            "flaw": None, "flaw_index": None, "evidence": None, "source_run": 1, "paper_id": None, "version": None}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A review + story sweep and a judged folder beside it; read only (the view test copies it)."""
    tmp_path = tmp_path_factory.mktemp("folders")
    sweep = tmp_path / "sweep"
    rows = [_review(p, v, r, 4 + (v == "v2") + r, truncated=(p == "p1"))
            for p in ("p1", "p2", "p3") for v in ("v1", "v2") for r in (1, 2)]
    rows[0]["raw_content"] = f"**Summary:** {EVIL} and <img src=http://evil.example/x.png>"
    rows.append(_review("p4", "v1", 1, None, status="error"))
    _write(sweep, "reviews", rows)
    stories = [_story(s, t, f"Story {s} turn {t}.") for s in ("s1", "s2") for t in (1, 2, 3)]
    _write(sweep, "stories", stories)
    (sweep / "manifest.json").write_text(json.dumps({"sweep_id": "sw", "job": "review", "runs": [
        {"job": "review", "model_name": "m", "git_revision": "abc123def4567", "started_at": "a", "finished_at": "b",
         "counts": {"rows": 13, "ok": 12, "error": 1}}], "latest": {"git_revision": "abc123def4567"}}))
    judged = tmp_path / "sweep-judged"
    _write(judged, "judgments", [_judgment(s, c, 3 + k, k) for s in stories for c in ("creativity", "coherence")
                                 for k in (0, 1)])
    (judged / "manifest.json").write_text(json.dumps({"job": "judge", "config": {"source": str(sweep)}}))
    return sweep, judged


def _page(sweep, tmp_path, *extra) -> str:
    out = tmp_path / "page.html"
    assert main(["report", str(sweep), "--html", str(out), *extra]) == 0
    return out.read_text()


@pytest.fixture(scope="module")
def page(folders, tmp_path_factory) -> str:
    """The page of the sweep, with the judged folder beside it found (built once: plots cost seconds)."""
    return _page(folders[0], tmp_path_factory.mktemp("page"))


def test_page_loads_nothing_and_escapes_model_text(page):
    text = page
    t = parse(text)
    assert [tag for tag, _ in t.tags].count("script") == 1  # ours, inline, with no src
    assert all("src" not in a for tag, a in t.tags if tag == "script")
    assert "alert(1)" not in t.scripts[0]
    for tag, a in t.tags:
        for attr in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", a.get(attr) or ""), (tag, a)
    imgs = [a["src"] for tag, a in t.tags if tag == "img"]
    assert imgs and all(s.startswith("data:image/png;base64,") for s in imgs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;img src=http://evil.example" in text
    assert not any(tag == "link" for tag, _ in t.tags)
    assert any(tag == "input" and a.get("class") == "filter" for tag, a in t.tags)
    for s in ("p1", "p2", "p3", "p4", "abc123def456", "Story s2 turn 3.", "Paired comparison"):
        assert s in text


def test_judged_scores_join_the_turns_and_errors_are_grouped(folders, page, tmp_path):
    sweep, judged = folders
    text = page  # the judged folder beside the sweep names it as its source: found
    assert "judge judge (mean over runs)" in text and "creativity" in text
    assert "<td>3.50</td>" in text  # scores 3 and 4 of the two judge runs
    assert 'id="judgments"' in text and 'id="errors"' in text
    errors = text[text.index('id="errors"'):]
    assert "unparseable_review" in errors and "p4/v1/run1/m" in errors and "rating: missing" in errors
    text2 = _page(judged, tmp_path)  # the judged folder alone: its stories come from the source
    assert "Story s1 turn 1." in text2 and "<td>3.50</td>" in text2


def test_cap_counts_the_rest(folders, tmp_path):
    sweep, _ = folders
    text = _page(sweep, tmp_path, "--html-max-items", "2")
    assert "Showing 2 of 4 papers in full; 2 more" in text
    assert "Showing 2 of 2 sequences" not in text and "Showing 2 of" in text
    assert "p4 —" not in text and "p1 —" in text


def test_bad_folder_is_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none"), "--html", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert main(["view", str(tmp_path / "none")]) == 2


def test_view_rebuilds_on_reload(folders, tmp_path):
    from longsweep.reporting.serve import make_server
    sweep = tmp_path / "sweep"
    shutil.copytree(folders[0], sweep)
    srv = make_server(sweep, port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/" % srv.server_address[1]
    try:
        first = urllib.request.urlopen(url, timeout=60).read().decode()
        assert "p2" in first and "late-paper" not in first
        _write(sweep, "reviews", [_review("late-paper", "v1", 1, 7)], name="part-1.parquet")
        second = urllib.request.urlopen(url, timeout=60).read().decode()
        assert "late-paper" in second
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "other", timeout=10)
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_criterion_with_no_parsed_answer_on_a_turn_leaves_a_gap_in_the_plots(folders, tmp_path):
    """A small judge often answers no criterion it can parse on one turn: that turn's mean is None, and the
    judge's plots (on the page and from ``report --plots``) are drawn without it instead of failing."""
    _, judged = folders
    bad = shutil.copytree(judged, tmp_path / "judged")
    failed = {**_judgment(_story("s1", 1, "x"), "pacing", None), "status": "error", "error": "no score",
              "error_kind": "unparseable_judgment"}
    _write(bad, "judgments", [failed, _judgment(_story("s1", 2, "x"), "pacing", 4)], "part-1.parquet")
    text = _page(bad, tmp_path)
    assert "pacing" in text and "unparseable_judgment" in text
    assert main(["report", str(bad), "--plots", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "judge_scores_per_turn.png").is_file()
