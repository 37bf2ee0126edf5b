"""The ``compare`` subcommand: can a reviewer tell a paper's first version from its revised one?

    longsweep compare RESULTS [RESULTS ...] [--base v1] [--revised latest] [--metrics ...]
                      [--human FILE.csv] [--human-version V] [--json] [--csv DIR] [--plots DIR]

``add_parser(subparsers)`` adds the subcommand to the ``longsweep`` parser; ``run(args)`` runs it and
returns the exit code (0), or raises ``InputError`` when there is nothing to compare.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from longsweep.analysis import METRICS
from longsweep.errors import InputError


def _metrics(s: str) -> list[str]:
    names = [m.strip() for m in s.split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(METRICS)}; got {s!r}")
    return names


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``compare`` to an ``argparse`` sub-parsers object; returns the new parser."""
    p = subparsers.add_parser("compare", help="paired base-vs-revised statistics of review sweeps",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="sweep folders (<sweep>/reviews/*.parquet) or folders of them")
    p.add_argument("--base", default="v1", help="the first version (default v1)")
    p.add_argument("--revised", default="latest", help="the revised version (default latest)")
    p.add_argument("--metrics", type=_metrics, default=list(METRICS),
                   help=f"comma-separated subset of {','.join(METRICS)} (default all)")
    p.add_argument("--human", default=None, metavar="FILE.csv",
                   help="human scores: a paperid column and any of the metric columns (per-paper means)")
    p.add_argument("--human-version", default=None,
                   help="which AI version to set against the human scores (default: --revised)")
    p.add_argument("--bootstrap", type=int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    p.add_argument("--csv", default=None, metavar="DIR", help="write one CSV per table into DIR")
    p.add_argument("--plots", default=None, metavar="DIR", help="write PNG plots into DIR")
    p.add_argument("--verbose", "-v", action="store_true", help="more logging")
    return p


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The whole comparison as a dict of tables (lists of row dicts) and notes."""
    from longsweep.analysis.agreement import between_models, between_reviewers, run_consistency
    from longsweep.analysis.paired import compare
    from longsweep.analysis.tables import load

    if args.base == args.revised:
        raise InputError(f"--base and --revised are both {args.base!r}")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    data = load(args.results)
    human = None
    if args.human:
        from longsweep.analysis.human import load_human

        human = load_human(args.human, args.metrics)  # a bad file fails before any computation
    rows, per, notes = compare(data, args.base, args.revised, args.metrics, args.bootstrap, args.seed)
    notes = data.notes + notes + [f"{r['model']}/{r['metric']}: {r['note']}" for r in rows if r["note"]]
    result: dict[str, Any] = {
        "inputs": data.sources, "base": args.base, "revised": args.revised, "metrics": list(args.metrics),
        "bootstrap": {"resamples": args.bootstrap, "seed": args.seed, "level": 0.95},
        "paired": rows, "per_paper": per.to_dict("records"),
        "consistency": run_consistency(data.reviews, args.metrics),
        "agreement_models": between_models(data.reviews, args.metrics),
        "agreement_reviewers": between_reviewers(data.reviewers, args.metrics),
        "human": [], "human_version": None, "notes": notes,
    }
    if human is not None:
        from longsweep.analysis.human import compare_human

        version = args.human_version or args.revised
        hrows, hnotes = compare_human(data.reviews, human, version, args.metrics)
        result.update(human=hrows, human_version=version)
        notes += hnotes
    return result


def run(args: argparse.Namespace) -> int:
    """Print the comparison (tables or JSON) and write CSV / plots when asked; 0 when it produced a result."""
    from longsweep.analysis.render import format_text, to_json, write_csv

    result = build(args)
    print(to_json(result) if args.json else format_text(result))
    written = write_csv(result, args.csv) if args.csv else []
    if args.plots:
        import pandas as pd

        from longsweep.analysis.plots import write_plots

        per = pd.DataFrame(result["per_paper"], columns=["model", "metric", "paper_id", "base", "revised", "diff"])
        written += write_plots(result["paired"], per, args.base, args.revised, args.plots)
    for path in written:
        print(f"wrote: {path}", file=sys.stderr)
    return 0
