"""``report --html`` on the shared real sweep (reviews of three papers x v1, v2 x 2 runs; two story
sequences x 3 turns): every paper with both versions side by side, every story turn in order, nothing to
load, plots embedded; the page's size is printed (docs/REPORT.md states it)."""

import re

import pandas as pd
import pytest

from longsweep.cli import main

pytestmark = pytest.mark.integration


def _item(text: str, summary: str) -> str:
    """One foldable item of the page: from its summary to the next item."""
    start = text.index(f"<summary>{summary}")
    end = text.find('<details class="item"', start)
    return text[start:end if end > 0 else None]


def test_html_of_a_real_sweep(shared_sweep, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", str(shared_sweep), "--html", str(out)]) == 0
    assert f"html: {out}" in capsys.readouterr().err
    text = out.read_text()
    print(f"page of the shared sweep: {out.stat().st_size} bytes")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert len(re.findall(r"<script", text)) == 1 and "<link" not in text
    imgs = re.findall(r'<img [^>]*src="([^"]*)"', text)
    assert len(imgs) >= 5 and all(s.startswith("data:image/png;base64,") for s in imgs)
    reviews = pd.read_parquet(shared_sweep / "reviews")
    for pid, g in reviews.groupby("paper_id"):
        block = _item(text, f"{pid} —")
        assert "<h4>v1</h4>" in block and "<h4>v2</h4>" in block  # the two versions side by side
        assert block.count("<pre") == int((g.raw_content.fillna("") != "").sum())
    stories = pd.read_parquet(shared_sweep / "stories")
    for (seq, run), g in stories.groupby(["sequence_id", "run"]):
        block = _item(text, f"{seq} / run {run} / ")
        turns = [int(t) for t in re.findall(r"<b>turn (\d+) ", block)]
        assert turns == sorted(g.turn.tolist())
    assert 'class="filter"' in text and 'id="run"' in text and "Paired comparison" in text
