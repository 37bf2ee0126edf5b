"""The ``longsweep`` command: a short CLI over the library.

    longsweep models                         list the registry
    longsweep generate PROMPTS.jsonl --model NAME
    longsweep plan PAPERS_DIR --model NAME   fit papers to the window, no weights loaded
    longsweep review PAPERS_DIR --model NAME review sweep on Ray
    longsweep export RESULTS_DIR --to DIR    the review seed's JSON layout
    longsweep report RESULTS_DIR [--plots DIR] [--json]

Exit codes: 0 all items ok; 1 some items are error rows; 2 bad input or config
(nothing ran); 3 a fatal error stopped the sweep (engine cannot load); 4 the
error budget (--max-errors / --max-error-rate) stopped the sweep early.
"""

from __future__ import annotations

import argparse
import logging
import sys

from longsweep.config import ConfigError
from longsweep.errors import FatalError, InputError

EXIT_OK, EXIT_ITEM_ERRORS, EXIT_BAD_INPUT, EXIT_FATAL, EXIT_STOPPED = 0, 1, 2, 3, 4


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-file", default=None, help="model registry (default: config/models.yaml)")
    p.add_argument("--verbose", "-v", action="store_true", help="log every item")


def _sweep_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, action="append", help="model name from the registry (repeatable)")
    p.add_argument("--out", default=None, help="sweep folder (default results/<sweep_id>)")
    p.add_argument("--sweep-id", default=None)
    p.add_argument("--resume", action="store_true", help="skip keys already in --out (also the default when --out has results)")
    p.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS, then a running local head, then embedded)")
    p.add_argument("--actors", default=None, help="actor pool size: N or MIN,MAX")
    p.add_argument("--batch-items", type=int, default=None, help="items per planned batch")
    p.add_argument("--max-errors", type=int, default=None, help="stop when more than N items of this run fail")
    p.add_argument("--max-error-rate", type=float, default=None,
                   help="stop when the share of failed items exceeds F (judged after 20 rows)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="longsweep", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("models", help="list the model registry")
    _common(p)

    p = sub.add_parser("generate", help="run chat prompts from a JSONL file through the actor pool")
    p.add_argument("prompts", help="JSONL: {id, messages|prompt, max_tokens?, temperature?, seed?}")
    p.add_argument("--max-tokens", type=int, default=None)
    _sweep_flags(p)
    _common(p)

    p = sub.add_parser("plan", help="fit papers to a model's window without loading weights")
    p.add_argument("papers_dir")
    p.add_argument("--model", required=True)
    p.add_argument("--window", type=int, default=None, help="override the model's context window")
    p.add_argument("--versions", default=None, help="comma-separated, e.g. v1,v2")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--keep-hidden", action="store_true", help="keep hidden text in the prompt")
    _common(p)

    p = sub.add_parser("review", help="review sweep: papers x versions x runs on Ray actors")
    p.add_argument("papers_dir")
    p.add_argument("--versions", default=None, help="comma-separated, e.g. v1,v2 (default: all found)")
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--max-figures", "--max_figures", dest="max_figures", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="review only the first N papers")
    p.add_argument("--config", default=None, help="review options YAML (default config/review.yaml)")
    p.add_argument("--window", type=int, default=None, help="use a smaller context window than the registry's")
    _sweep_flags(p)
    _common(p)

    p = sub.add_parser("stories", help="story sequences: multi-turn generation on Ray actors, one row per turn")
    p.add_argument("sequences", help="YAML (ours) or JSON (story seed format)")
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--reset", choices=["never", "after_chars", "every_turn"], default=None)
    p.add_argument("--window", type=int, default=None, help="use a smaller context window than the registry's")
    p.add_argument("--config", default=None, help="story options YAML (default config/stories.yaml)")
    _sweep_flags(p)
    _common(p)

    p = sub.add_parser("report", help="counts, truncation, scores, speed of a results folder; plots")
    p.add_argument("results_dir", help="a sweep folder (results/<sweep_id>) or a folder of them")
    p.add_argument("--plots", default=None, help="write PNG plots into this folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _common(p)

    p = sub.add_parser("export", help="write the review seed's JSON layout from a results folder")
    p.add_argument("results_dir")
    p.add_argument("--to", required=True)
    _common(p)
    return ap


def parse_actors(s: str | None, default: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    if not s:
        return default
    parts = [int(x) for x in s.split(",")]
    lo, hi = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    if lo < 1 or hi < lo:
        raise ConfigError(f"--actors: need 1 <= MIN <= MAX, got {s!r}")
    return lo, hi


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from longsweep import commands

    try:
        return getattr(commands, f"cmd_{args.cmd}")(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FatalError as e:
        print(f"fatal: {e}", file=sys.stderr)
        return EXIT_FATAL


if __name__ == "__main__":
    sys.exit(main())
