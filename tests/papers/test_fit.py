"""Three-stage fit: pure tests with a declared estimate tokenizer, then real papers with SmolLM2's own."""

import pytest

from longsweep.budget import BudgetError
from longsweep.papers.fit import APPENDIX_NOTICE, fit_paper
from longsweep.papers.ingest import ingest_pdf
from longsweep.papers.prompts import review_messages
from longsweep.tokens import HeuristicTokenizer, count_messages

TOK = HeuristicTokenizer(1)  # 1 char = 1 token: exact arithmetic for the stage logic


def _paper(body=4000, abstracts=2, appendix=3000):
    paras = [f"Body sentence number {i} talks about methods. It has a second sentence." for i in range(body // 70)]
    refs = []
    for k in range(6):
        refs.append(f"[{k}] Author {k}. 2020. A title {k}.")
        if k < abstracts:
            refs[-1] += f"\nAbstract: an abstract of reference {k} " + "x" * 300
    appx = [f"Appendix para {i} with details. More details here." for i in range(appendix // 50)]
    return ("\n\n".join(paras) + "\n\n## References\n\n" + "\n\n".join(refs) +
            ("\n\n## A Proofs\n\n" + "\n\n".join(appx) if appendix else ""))


def build(text):
    return [{"role": "user", "content": "Review:\n" + text}]


def _fit(text, limit, **kw):
    r = fit_paper(text, tokenizer=TOK, build=build, max_prompt_tokens=limit, **kw)
    assert r.prompt_tokens == count_messages(TOK, r.messages) <= limit
    return r


def test_fits_untouched():
    t = _paper()
    r = _fit(t, 100_000)
    assert not r.was_truncated and r.stages == [] and r.text == t and r.chars_removed == 0


def test_stage1_only_drops_reference_abstracts_keeping_citations():
    t = _paper()
    r = _fit(t, len(t) - 200)
    assert r.stages == ["ref_abstracts"] and r.was_truncated
    assert "[0] Author 0. 2020. A title 0." in r.text and "## A Proofs" in r.text
    assert r.usage >= 0.97


def test_stage2_drops_appendix_with_notice():
    t = _paper()
    r = _fit(t, len(t) - 2000)
    assert r.stages == ["ref_abstracts", "appendix"]
    assert "Appendices omitted" in r.text and "[5] Author 5" in r.text
    assert r.usage >= 0.97


def test_stage3_keeps_head_and_tail_in_ratio():
    t = _paper(body=20000, appendix=0)
    r = _fit(t, 5000, head_ratio=0.7)
    assert r.stages == ["ref_abstracts", "head_tail"]
    head, tail = r.text.split("\n\n[... ")
    assert r.text.startswith("Body sentence number 0") and "[5] Author 5" in tail
    assert 0.6 < len(head) / (len(head) + len(tail)) < 0.8
    assert r.usage >= 0.97
    # cut at sentence boundaries: the head ends with a full sentence
    assert head.endswith(".")  # cut at a sentence end
    assert tail.split("...]\n\n", 1)[1].startswith(("Body sentence", "It has", "## References", "["))


def test_stage_tokens_recorded_and_decreasing():
    r = _fit(_paper(body=20000), 3000)
    names = [s for s, _ in r.stage_tokens]
    assert names == ["full", "ref_abstracts", "appendix", "head_tail"]
    vals = [n for _, n in r.stage_tokens]
    assert vals == sorted(vals, reverse=True) and r.tokens_full == vals[0]


def test_single_huge_line_is_cut():
    t = "word " * 1_000_000  # a 5 MB line with no sentence end
    r = _fit(t, 4000)
    assert r.was_truncated and r.usage >= 0.97


def test_budget_error_when_instruction_alone_overflows():
    with pytest.raises(BudgetError, match="instruction alone"):
        _fit("text", 5)


@pytest.mark.parametrize("window", [4096, 8192, 16384, 32768])
def test_real_papers_never_over_budget_and_use_the_budget(papers_dir, smol_tok, window):
    worst = 1.0
    for pdf in sorted(papers_dir.glob("*.pdf")):
        doc = ingest_pdf(pdf)
        limit = window - 512 - 32
        r = fit_paper(doc.markdown, tokenizer=smol_tok, build=lambda t: review_messages(t, family="json", version="v1"),
                      max_prompt_tokens=limit)
        assert r.prompt_tokens <= limit, pdf.name
        assert count_messages(smol_tok, r.messages) == r.prompt_tokens
        if r.was_truncated:
            worst = min(worst, r.usage)
    assert worst >= 0.97
