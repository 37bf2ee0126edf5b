"""`longsweep report` on a small real sweep: its numbers equal pandas' on the same Parquet; plots are written."""

import json
import math

import pandas as pd
import pytest

from longsweep.cli import main
from longsweep.reporting.tables import SCORES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sweep(shared_sweep):
    """The shared sweep (tests/shared_sweeps.py): reviews cut to 1,536 tokens, stories windowed at 600."""
    return shared_sweep


def _close(a, b):
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_report_numbers_equal_pandas(sweep, capsys):
    capsys.readouterr()
    assert main(["report", str(sweep), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    df = pd.read_parquet(sweep / "reviews")
    rv = rep["reviews"]
    assert rv["counts"]["rows"] == len(df) == 3 * 2 * 2
    assert rv["counts"]["ok"] == int((df.status == "ok").sum())
    assert rv["counts"]["errors_by_kind"] == df[df.status != "ok"].error_kind.value_counts().to_dict()

    rate = df.groupby(["model", "version"]).was_truncated.mean()
    for (m, v), r in rate.items():
        assert _close(rv["truncation"][f"{m}/{v}"]["rate"], float(r))
    assert any(t["truncated"] for t in rv["truncation"].values())  # a 1,536 window cuts every paper

    ok = df[df.status == "ok"]
    assert len(ok) > 0
    for v, g in ok.groupby("version"):
        for s in SCORES:
            d = rv["scores_by_version"][v][s]
            assert d["n"] == int(g[s].count())
            assert _close(d["mean"], g[s].mean()) and _close(d["std"], g[s].std())
    for t, g in ok.groupby("was_truncated"):
        d = rv["scores_by_truncation"]["truncated" if t else "not_truncated"]["rating"]
        assert d["n"] == int(g.rating.count()) and _close(d["mean"], g.rating.mean())
    for m, g in ok.groupby("model"):
        perf = rv["performance"][m]
        for q in (0.5, 0.9, 0.99):
            assert _close(perf["latency_s"][f"p{int(q * 100)}"], g.latency_s.quantile(q))
            assert _close(perf["tokens_per_s"][f"p{int(q * 100)}"], g.tokens_per_s.quantile(q))
    assert rv["performance"]["smollm2-135m"]["retries"] == int((df.attempts - 1).clip(lower=0).sum())
    assert rv["performance"]["smollm2-135m"]["resets"] == int(df.resets.sum())

    st_df = pd.read_parquet(sweep / "stories")
    st = rep["stories"]
    assert st["counts"]["rows"] == len(st_df) and st["counts"]["ok"] == int((st_df.status == "ok").sum())
    sok = st_df[st_df.status == "ok"]
    for (m, t), g in sok.groupby(["model", "turn"]):
        d = st["completion_per_turn"][f"{m}/turn{t}"]
        assert d["n"] == len(g) and _close(d["mean"], g.completion_tokens.mean())
    windowed = int(((sok.turns_dropped > 0) | (sok.tokens_dropped > 0)).sum())
    assert st["windowed"]["smollm2-135m"]["windowed"] == windowed
    assert windowed > 0  # a 600-token window must window the later turns


def test_report_text_and_plots(sweep, tmp_path, capsys):
    capsys.readouterr()
    assert main(["report", str(sweep), "--plots", str(tmp_path / "plots")]) == 0
    text = capsys.readouterr().out
    assert "== reviews ==" in text and "== stories ==" in text and "scores by version" in text
    names = {"rating_by_version.png", "truncation_rate.png", "review_tokens_per_s.png", "completion_per_turn.png",
             "story_tokens_per_s.png"}
    assert {p.name for p in (tmp_path / "plots").iterdir()} == names
    import matplotlib.image as mpimg
    for n in names:
        p = tmp_path / "plots" / n
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(p)
        assert img.shape[0] > 100 and img.shape[1] > 100 and img[..., :3].std() > 0.01  # not a blank image


def test_report_of_a_folder_without_results_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no reviews/, stories/, generations/ or judgments/ results" in capsys.readouterr().err
