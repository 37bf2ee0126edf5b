"""Journal-style appendices: ``A. Title`` headings (sentence case, commas) after an author-year reference list."""

import pytest

from longsweep.papers.sections import find_sections

BODY = """# Adaptive step sizes for streaming regression

**Abstract**

We study step sizes for least squares on data streams and prove a bound on the excess risk.

1. Introduction

Streaming regression asks for an estimate after every sample. Prior work (Bach and Moulines, 2013) fixes the step.

2. Method

We set the step from a running estimate of the curvature, as in Section 3.

3. Results

Table 1 shows the excess risk on four data sets.

4. Conclusion

The adaptive step matches a tuned constant step without tuning.
"""

REFERENCES = """References

Bach, F., Moulines, E., 2013. Non-strongly-convex smooth stochastic approximation with convergence rate
O(1/n). In: Advances in Neural Information Processing Systems, pp. 773-781.
A. Defossez and F. Bach. 2015. Averaged least-mean-squares: bias-variance trade-offs and optimal
sampling distributions. In: AISTATS.
A. Dieuleveut, N. Flammarion, F. Bach,
2017. Harder, better, faster, stronger convergence rates for least-squares regression. J. Mach. Learn.
Res. 18, 1-51.
B. Jain, P. Kakade, S. Kidambi, R. Netrapalli, A. Sidford, 2018. Accelerating stochastic gradient descent
for least squares regression. In: COLT.
E. Agichtein. 2005. Extracting Relations From Large
Text Collections. PhD thesis.
"""

APPENDIX = """{a}

Proof of Theorem 1. Expand the recursion of the iterates and bound each term.

A.1. Proof of Lemma 2

The second moment contracts at rate one minus the step.

{b}

Table 4 lists the data sets and the baselines.
"""


@pytest.mark.parametrize("a,b", [
    ("A. Proofs of the main results", "B. Additional experiments, data sets and baselines"),
    ("## A. Proofs of the main results", "## B. Additional experiments, data sets and baselines"),
    ("**A. Proofs of the main results**", "**B. Additional experiments, data sets and baselines**"),
    ("**A.** Proofs of the main results", "**B.** Additional experiments, data sets and baselines"),
    ("A. Datasets, metrics and baselines", "B. Proofs"),
    ("# A. Proof of theorem 1", "# B. Experimental details"),
])
def test_first_dotted_heading_after_the_references_is_the_appendix(a, b):
    text = BODY + "\n" + REFERENCES + "\n" + APPENDIX.format(a=a, b=b)
    sec = find_sections(text)
    assert text[sec.references:].startswith("References\n")
    assert sec.appendix is not None and text[sec.appendix:].startswith(a + "\n")
    assert "Harder, better, faster" in text[sec.references:sec.refs_end]


def test_reference_entries_that_start_with_initials_are_not_headings():
    text = BODY + "\n" + REFERENCES
    assert find_sections(text).appendix is None
    # one more wrapped entry that looks like a short title, and a lone "B." entry after it
    text += "A. Rakhlin, O. Shamir, K. Sridharan, 2012. Making gradient descent optimal\nB. Smith and C. Jones.\n"
    assert find_sections(text).appendix is None


def test_an_unmarked_sentence_case_line_needs_a_following_appendix_heading():
    alone = BODY + "\n" + REFERENCES + "\nA. Proofs of the main results\n\nThe proof expands the recursion.\n"
    assert find_sections(alone).appendix is None  # could be a wrapped reference: not taken alone
    with_sub = alone + "\nA.1 Proof of Lemma 2\n\nText.\n"
    sec = find_sections(with_sub)
    assert with_sub[sec.appendix:].startswith("A. Proofs of the main results")
