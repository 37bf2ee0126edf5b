"""``make run``: the main job on the embedded default.

Writes sample papers (two versions each, figures, references with abstracts,
appendices, one with hidden text), reviews them with SmolLM2 on a local Ray with
two actors, prints where the Parquet is and a short summary, then the report
(``longsweep report``) of that run with its plots, and the paired first-vs-revised comparison
(``longsweep compare --base v1 --revised v2``) of the same sweep. Second part: a small story sweep judged on
the story rubric by the same SmolLM2 (``longsweep judge``). A 135M model judging its own stories measures
nothing; the point is that the path runs end to end on any machine.
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
    judged = judged_stories(Path.cwd() / "results")
    return code if code else judged


def judged_stories(results: Path) -> int:
    """Two story sequences written by SmolLM2, then judged by SmolLM2 on config/rubrics/story.yaml."""
    import shutil
    seqs = results / "demo-sequences.yaml"
    shutil.copy(Path.cwd() / "config" / "sequences" / "default.yaml", seqs)
    stories, judged = results / "demo-stories", results / "demo-stories-judged"
    steps = [["stories", str(seqs), "--model", "smollm2-135m", "--max-tokens", "96", "--actors", "2",
              "--out", str(stories)],
             ["judge", str(stories), "--rubric", str(Path.cwd() / "config" / "rubrics" / "story.yaml"),
              "--model", "smollm2-135m", "--max-tokens", "256", "--actors", "2", "--out", str(judged)],
             ["report", str(judged)]]
    code = 0
    for args in steps:
        print("\nlongsweep " + " ".join(args))
        code = cli_main(args)
        if code not in (0, 1):
            return code
    return code


if __name__ == "__main__":
    sys.exit(main())
