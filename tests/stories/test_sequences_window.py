import json

import pytest

from longsweep.budget import BudgetError
from longsweep.config import ConfigError
from longsweep.stories.sequences import load_sequences
from longsweep.stories.window import CUT_MARKER, fit_window, messages_for
from longsweep.tokens import HeuristicTokenizer, count_messages


def test_default_set_has_five_sequences_of_three_or_more_turns():
    from pathlib import Path
    loaded = load_sequences(Path(__file__).resolve().parents[2] / "config" / "sequences" / "default.yaml")
    assert not loaded.errors and len(loaded.sequences) >= 5
    assert all(len(s.prompts) >= 3 for s in loaded.sequences)


def test_story_seed_json_and_bad_prompts(tmp_path):
    p = tmp_path / "seqs.json"
    p.write_text(json.dumps({
        "good": [{"name": "a", "text": "Write a line."}, {"name": "b", "text": "Continue."}],
        "empty": [{"name": "a", "text": "  "}],
        "notstr": [{"name": "a", "text": 42}],
    }))
    loaded = load_sequences(p)
    assert [s.id for s in loaded.sequences] == ["good"]
    reasons = dict(loaded.errors)
    assert "prompt 1 is empty" in reasons["empty"] and "must be a string, got int" in reasons["notstr"]


def test_bad_files(tmp_path):
    (tmp_path / "x.yaml").write_text("sequences: [unclosed")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_sequences(tmp_path / "x.yaml")
    (tmp_path / "y.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected an object"):
        load_sequences(tmp_path / "y.json")


TOK = HeuristicTokenizer(1)


def _history(n, para="One sentence here. Another sentence there.\n\nA second paragraph of the answer."):
    return [(f"prompt {i}", f"answer {i}: {para}") for i in range(n)]


def test_window_keeps_everything_when_it_fits():
    w = fit_window(TOK, system="sys", history=_history(2), prompt="now", window=10_000, max_tokens=100)
    assert w.turns_dropped == 0 and w.tokens_dropped == 0 and w.messages == messages_for("sys", _history(2), "now")


@pytest.mark.parametrize("window", [300, 420, 560, 700])
def test_window_drops_oldest_first_and_is_exact(window):
    h = _history(8)
    w = fit_window(TOK, system="system prompt", history=h, prompt="the current prompt", window=window,
                   max_tokens=100, buffer=10)
    assert w.context_tokens == count_messages(TOK, w.messages) <= window - 110
    assert w.messages[0]["content"] == "system prompt" and w.messages[-1]["content"].endswith("the current prompt")
    assert w.turns_dropped >= 1 and w.tokens_dropped > 0
    assert "earlier turn(s) omitted" in w.messages[1]["content"]
    # the newest turns survive; only the oldest kept answer may be shortened, with a marker
    if len(w.messages) > 2:
        assert w.messages[-2]["content"].endswith(h[-1][1])
    shortened = [m for m in w.messages if m["content"].startswith(CUT_MARKER)]
    assert len(shortened) <= 1


def test_window_refuses_when_the_current_prompt_cannot_fit():
    with pytest.raises(BudgetError, match="system prompt \\+ current prompt"):
        fit_window(TOK, system="s" * 500, history=[], prompt="p", window=400, max_tokens=100)


def test_window_with_the_real_tokenizer(smol_tok):
    h = _history(30)
    w = fit_window(smol_tok, system="You write stories.", history=h, prompt="Continue.", window=1024, max_tokens=256)
    assert w.context_tokens == count_messages(smol_tok, w.messages) <= 1024 - 256
    assert w.turns_dropped > 0


def test_a_prompt_that_fits_only_without_the_dropped_turns_marker_is_a_budget_error(smol_tok):
    """Every earlier turn must go, and the marker saying so would push the prompt over: a BudgetError (an
    error row), never an AssertionError (a crashed task)."""
    from longsweep.budget import BudgetError
    from longsweep.stories.window import fit_window
    prompt = "Continue the story. " * 20
    base = len(smol_tok.encode_messages([{"role": "user", "content": prompt}]))
    history = [("Begin.", "word " * 300)]
    with pytest.raises(BudgetError, match="marker"):
        fit_window(smol_tok, system=None, history=history, prompt=prompt, window=base + 2 + 16, max_tokens=16)
