"""The real sweeps that the tests reading rows share, one of each per session (docs/TESTING.md).

A review sweep costs minutes on 2 cores; the tests of the report, the worker policies, the readers and the
export all read the rows of one. A new property about what a sweep writes extends these fixtures or reads
their folder; it does not start a sweep of its own. Tests must not change the folder: copy it first
(``shutil.copytree``) to write into it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REAL = "papermage_short_2304.02623v1.pdf"
# prompts of ~170 tokens each: by turn 3 the history cannot all fit a 600-token window
BRIEF = " ".join(f"Detail {i}: the harbour town has a red lighthouse and a bakery." for i in range(14))
REVIEW_OPTIONS = "completion_reserve: 256\nruns: 2\ntemperature: 0.7\nrepetition_penalty: 1.3\n"
# the story seed's reset after long answers, its threshold lowered so that 96-token answers cross it
STORY_OPTIONS = "reset_after_chars: 200\nmin_chars: 1\nrepetition_penalty: 1.2\n"


def _papers(root: Path, papers_dir: Path) -> Path:
    from longsweep.papers.samples import make_samples
    papers = make_samples(root / "papers", n_papers=2)
    d = papers / Path(REAL).stem  # a real paper as v1, and a copy as v2
    d.mkdir()
    shutil.copy(papers_dir / REAL, d / "v1.pdf")
    shutil.copy(papers_dir / REAL, d / "v2.pdf")
    return papers


def _sequences(root: Path) -> Path:
    seqs = root / "seqs.yaml"
    seqs.write_text("sequences:\n" + "".join(
        f"  - id: s{k}\n    prompts:\n" + "".join(f"      - {{name: t{t}, text: 'Turn {t}. {BRIEF} Continue the story.'}}\n"
                                                for t in range(1, 4)) for k in range(2)))
    return seqs


SHARED_PREFIX = "shared/sweep"


def review_args(root: Path, out: str) -> list[str]:
    """The shared review sweep's command line (a rerun with ``--retry-errors`` repeats it)."""
    return ["review", str(root / "papers"), "--model", "smollm2-135m", "--window", "1536", "--versions", "v1,v2",
            "--config", str(root / "review.yaml"), "--actors", "2", "--batch-items", "2", "--out", out]


@pytest.fixture(scope="session")
def shared_sweep(ray_local, smollm, papers_dir, tmp_path_factory, s3) -> Path:
    """One sweep with ``reviews/`` and ``stories/``, both written through the CLI in-process on the session Ray
    with 2 actors, into the test S3 server (``s3.uri(SHARED_PREFIX)``: Ray Data's writes, the workers' story
    and reviewer sinks, the manifest and the lease all go to the object store): 3 papers (2 generated samples,
    one real PDF) x v1, v2 x 2 runs at a 1,536-token window (every paper is cut), and 2 story sequences x 3
    turns at a 600-token window (later turns windowed). Returned: a local copy of that prefix, for the tests
    that read it with pandas, polars and duckdb (tests/integration/test_store_s3.py reads the bucket)."""
    from longsweep.cli import main
    root = tmp_path_factory.mktemp("shared")
    _papers(root, papers_dir)
    (root / "review.yaml").write_text(REVIEW_OPTIONS)
    (root / "stories.yaml").write_text(STORY_OPTIONS)
    uri = s3.uri(SHARED_PREFIX)
    assert main(review_args(root, uri)) in (0, 1)
    code = main(["stories", str(_sequences(root)), "--model", "smollm2-135m", "--max-tokens", "96", "--window",
                 "600", "--config", str(root / "stories.yaml"), "--actors", "2", "--out", uri])
    assert code in (0, 1)
    out = root / "sweep"
    s3.download(SHARED_PREFIX, out)
    return out


@pytest.fixture(scope="session")
def shared_papers(shared_sweep) -> Path:
    """The papers folder the shared review sweep read."""
    return shared_sweep.parent / "papers"
