import pytest

from longsweep.engines.registry import load_tokenizer
from longsweep.tokens import HeuristicTokenizer, TiktokenTokenizer, count, count_messages, merge_system

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name three colours."}]


def test_model_tokenizer_is_exact_and_applies_the_template(smol_tok):
    assert smol_tok.exact
    text = smol_tok.render(MSGS)
    assert "<|im_start|>system\nBe brief.<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    # the template's special tokens are single tokens, so the chat count is far below a char estimate
    n = count_messages(smol_tok, MSGS)
    assert n == len(smol_tok.encode_messages(MSGS))
    assert 15 < n < 40
    assert count(smol_tok, "hello world") == 2


def test_heuristic_and_tiktoken_are_declared_estimates():
    h = HeuristicTokenizer(4)
    assert not h.exact and count(h, "x" * 10) == 3 and h.name == "chars/4"
    t = TiktokenTokenizer()
    assert not t.exact and count(t, "hello world") == 2
    with pytest.raises(ValueError):
        HeuristicTokenizer(0)


def test_fallback_selection(smollm):
    assert load_tokenizer(smollm, fallback="chars/3").name == "chars/3"
    assert load_tokenizer(smollm, fallback="tiktoken").name.startswith("tiktoken")
    with pytest.raises(ValueError, match="unknown fallback"):
        load_tokenizer(smollm, fallback="bpe")


def test_merge_system_for_templates_without_system_role():
    out = merge_system(MSGS)
    assert out == [{"role": "user", "content": "Be brief.\n\nName three colours."}]
    assert merge_system(MSGS[1:]) == MSGS[1:]
