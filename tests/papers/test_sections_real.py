"""Section detection agrees with the hand-checked table in ../shared/papers/README.md."""

import re

import pytest

from longsweep.papers.ingest import ingest_pdf
from longsweep.papers.sections import find_sections


def _table(papers_dir):
    rows = []
    for ln in (papers_dir / "README.md").read_text().splitlines():
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0].endswith(".pdf"):
            ref_page = int(re.search(r"\(p(\d+)\)", cells[3]).group(1))
            m = re.search(r"\(p(\d+)\)", cells[4])
            rows.append((cells[0], int(cells[1]), ref_page, int(m.group(1)) if m else None))
    return rows


def test_every_paper_matches_the_table(papers_dir):
    rows = _table(papers_dir)
    assert len(rows) == 14
    got = []
    for name, pages, ref_page, appx_page in rows:
        doc = ingest_pdf(papers_dir / name)
        sec = find_sections(doc.markdown)
        assert doc.n_pages == pages, name
        found = (doc.page_of(sec.references) if sec.references is not None else None,
                 doc.page_of(sec.appendix) if sec.appendix is not None else None)
        got.append((name, found, (ref_page, appx_page)))
    mismatches = [g for g in got if g[1] != g[2]]
    assert not mismatches, mismatches


@pytest.mark.parametrize("text,expect", [
    ("body\n\n## 7 References\n\n[1] A. B. 2020.", "## 7 References"),
    ("body\n\n**REFERENCES**\n\n[1] x", "**REFERENCES**"),
    ("body\n\nR EFERENCES\n\n[1] x", "R EFERENCES"),
    ("body\n\n# Bibliography\n\n[1] x", "# Bibliography"),
])
def test_reference_heading_shapes(text, expect):
    sec = find_sections(text)
    assert text[sec.references:].startswith(expect)


def test_inline_references_fallback():
    text = "intro " * 200 + "and so we conclude. References [1] Smith. 2020. A paper."
    sec = find_sections(text)
    assert text[sec.references:].startswith("References [1]")


@pytest.mark.parametrize("appx", ["## Appendix", "SUPPLEMENTAL MATERIAL", "## A Implementation Details",
                                  "A. Proofs of the Main Results", "## A\n\nIMPLEMENTATION DETAILS",
                                  "Supplementary Material"])
def test_appendix_heading_shapes(appx):
    text = "body\n\n## References\n\nA. Smith, B. Jones. 2019. A title.\n\nA. Vaswani. 2017. Attention.\n\n" + appx + "\n\nMore text."
    sec = find_sections(text)
    assert sec.appendix is not None and text[sec.appendix:].startswith(appx.split("\n")[0])


def test_author_initials_are_not_appendices():
    text = "body\n\n## References\n\nA. Smith, B. Jones. 2019. A title.\n\nA Vaswani and N Shazeer 2017.\n"
    assert find_sections(text).appendix is None


def test_reference_abstracts_are_found_inside_the_reference_list():
    text = ("Intro. Abstract: not this one.\n\n## References\n\n[1] Smith. 2020. Title.\n**Abstract:** We study x.\n\n"
            "[2] Chen. 2021. Other. Abstract: We also study y.\n\n## Appendix\n\nAbstract: not this either.")
    sec = find_sections(text)
    spans = [text[a:b] for a, b in sec.ref_abstracts]
    assert spans == ["**Abstract:** We study x.", "Abstract: We also study y."]
