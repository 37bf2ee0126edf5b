"""Figures as images for models that take them, captions as text for the others (prepare, one piece).

A declared estimate tokenizer stands in for the model's: this tests what goes into the
prompt and the budget, not the counts (tests/vllm/test_vllm_images.py runs a real model).
"""

import base64

from longsweep.config import ModelSpec
from longsweep.papers.ingest import ingest_markdown
from longsweep.papers.layout import PaperFile
from longsweep.jobs.review.options import ReviewOptions
from longsweep.jobs.review.prepare import prepare_paper
from longsweep.papers.samples import _figure_png, make_paper_pdf
from longsweep.tokens import HeuristicTokenizer

TOK = HeuristicTokenizer(3)
BASE = dict(backend="vllm", source={"hub": "x/y"}, context_window=8192, completion_reserve=256, safety_buffer=16)
VISION = ModelSpec(name="vlm", tokens_per_image=100, image_placeholder="<image>", **BASE)
TEXT = ModelSpec(name="txt", **BASE)


def _pdf(tmp_path):
    p = tmp_path / "p1" / "v1.pdf"
    make_paper_pdf(p, title="Windows", topic="retrieval", seed=1, sections=3)
    return PaperFile("p1", "v1", p, None, None)


def test_a_model_that_takes_images_gets_the_figure_and_pays_for_it(tmp_path):
    pf = _pdf(tmp_path)
    vis = prepare_paper(pf, VISION, TOK, ReviewOptions())
    txt = prepare_paper(pf, TEXT, TOK, ReviewOptions())
    assert vis.record.n_images == 1 and txt.record.n_images == 0
    assert base64.b64decode(vis.images[0])[:8] == b"\x89PNG\r\n\x1a\n" and txt.images == []
    user_vis, user_txt = vis.messages[-1]["content"], txt.messages[-1]["content"]
    assert user_vis.count("<image>") == 1 and "Figure 1 (page" in user_vis and "Figure captions:" not in user_vis
    assert "<image>" not in user_txt and "Figure captions:\n- Figure 1: Throughput" in user_txt
    # the image's tokens come out of the text's budget
    assert vis.record.budget_tokens == txt.record.budget_tokens - 100


def test_text_only_backends_never_get_images(tmp_path):
    llama = ModelSpec(name="l", backend="llama_cpp", source={"path": str(tmp_path)}, context_window=4096,
                      completion_reserve=256, tokens_per_image=100, image_placeholder="<image>")
    assert not llama.takes_images and VISION.takes_images and not TEXT.takes_images
    assert prepare_paper(_pdf(tmp_path), llama, TOK, ReviewOptions()).images == []


def test_max_figures_zero_sends_none(tmp_path):
    r = prepare_paper(_pdf(tmp_path), VISION, TOK, ReviewOptions(max_figures=0))
    assert r.images == [] and "<image>" not in r.messages[-1]["content"]


def test_markdown_images_inside_the_paper_folder_only(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    (d / "fig.png").write_bytes(_figure_png(3))
    (tmp_path / "secret.png").write_bytes(_figure_png(4))
    (d / "v1.md").write_text("# T\n\nText.\n\n![Figure 1: inside](fig.png)\n\n![Figure 2: outside](../secret.png)\n")
    doc = ingest_markdown(d / "v1.md", figure_images=True)
    assert [f.caption for f in doc.figures] == ["Figure 1: inside", "Figure 2: outside"]
    assert doc.figures[0].data[:4] == b"\x89PNG" and doc.figures[1].data is None and doc.figures[1].path is None
