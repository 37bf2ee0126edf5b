"""``make run``: the main job on the embedded default.

Writes sample papers (two versions each, figures, references with abstracts,
appendices, one with hidden text), reviews them with SmolLM2 on a local Ray with
two actors, prints where the Parquet is and a short summary, then the report
(``longsweep report``) of that run with its plots, and the paired first-vs-revised comparison
(``longsweep compare --base v1 --revised v2``) of the same sweep.
"""

from __future__ import annotations

from pathlib import Path

import sys

from longsweep.cli import main as cli_main
from longsweep.papers.samples import make_samples


def main() -> int:
    papers = make_samples(Path.cwd() / "results" / "sample-papers", n_papers=3)
    print(f"sample papers: {papers}")
    out = Path.cwd() / "results" / "demo-review"
    # A 2,048-token window keeps the demo to about a minute on two CPU cores and shows the three fit stages.
    args = ["review", str(papers), "--model", "smollm2-135m", "--window", "2048", "--versions", "v1,v2",
            "--runs", "1", "--actors", "2", "--out", str(out)]
    print("longsweep " + " ".join(args))
    code = cli_main(args)
    if code in (0, 1):  # some error rows still make a report
        report = ["report", str(out), "--plots", str(out / "plots")]
        print("\nlongsweep " + " ".join(report))
        cli_main(report)
        compare = ["compare", str(out), "--base", "v1", "--revised", "v2", "--plots", str(out / "plots")]
        print("\nlongsweep " + " ".join(compare))
        cli_main(compare)  # with few papers some statistics are empty; the tables say why
    return code


if __name__ == "__main__":
    sys.exit(main())
