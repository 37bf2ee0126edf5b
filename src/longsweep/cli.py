"""The ``longsweep`` command: a short CLI over the library.

    longsweep models [--check]               list the registry; --check: memory and endpoints
    longsweep generate PROMPTS.jsonl --model NAME
    longsweep review PAPERS_DIR --model NAME review sweep on Ray
    longsweep stories SEQUENCES.yaml --model NAME
    longsweep echo PROMPTS.jsonl --model NAME   a toy job: each prompt's token count
    longsweep plan PAPERS_DIR --model NAME   fit papers to the window, no weights loaded
    longsweep export RESULTS_DIR --to DIR    the review seed's JSON layout
    longsweep export RESULTS_DIR --format openai-batch --to FILE.jsonl   rows as OpenAI Batch output lines
    longsweep report RESULTS_DIR [--plots DIR] [--json] [--html FILE]
    longsweep view RESULTS_DIR [--port N]    the HTML report on 127.0.0.1, rebuilt on each reload
    longsweep compare RESULTS_DIR...         paired v1-vs-latest statistics over papers
    longsweep reparse RESULTS_DIR...         re-derive parsed review columns from raw_content

Exit codes (``errors.ExitCode``; docs/RELIABILITY.md has what each test checks):

    0    every item is ok
    1    the sweep finished; some items are error rows (counts by kind are printed)
    2    bad input or config, refused before Ray (one line naming the file, field or flag); or the sweep
         folder is in use by another run (its lease: host, pid, start time)
    3    fatal: the model workers cannot start, no node can ever hold one actor (or none joined within
         --wait-for-resources), a server is down, the disk is full (one line; the manifest records it)
    4    the error limit (--max-errors / --max-error-rate) stopped the sweep early; rows so far are kept
    130  SIGINT (Ctrl-C): the sweep stopped cleanly, rows kept, the manifest says interrupted
    143  SIGTERM: the same
"""

from __future__ import annotations

import argparse
import logging
import sys

from longsweep.errors import ExitCode, InterruptedSweep, LongsweepError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-file", default=None,
                   help="model registry (default: $LONGSWEEP_MODELS, else the registry shipped with longsweep)")
    p.add_argument("--verbose", "-v", action="store_true", help="log every item")


def _sweep_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, action="append", help="model name from the registry (repeatable)")
    p.add_argument("--out", default=None, help="sweep folder or object-store URI (s3://BUCKET/PREFIX, gs://...); default $LONGSWEEP_OUT/<sweep_id>, else results/<sweep_id>")
    p.add_argument("--sweep-id", default=None)
    p.add_argument("--resume", action="store_true", help="skip keys already in --out (also the default when --out has results)")
    p.add_argument("--address", default=None,
                   help="Ray address; `local`: an embedded Ray (default: RAY_ADDRESS, then a head started with "
                        "`ray start` on this machine, then an embedded Ray; never another sweep's embedded Ray)")
    p.add_argument("--actors", default=None, help="actor pool size: N or MIN,MAX")
    p.add_argument("--batch-items", type=int, default=None, help="items per planned batch")
    p.add_argument("--window", type=int, default=None, help="use a smaller context window than the registry's")
    p.add_argument("--config", default=None, help="the job's options YAML (default config/<job>.yaml when present)")
    p.add_argument("--max-errors", type=int, default=None,
                   help="stop a model's sweep when more than N of its items fail in this run "
                        "(each model counts its own)")
    p.add_argument("--max-error-rate", type=float, default=None,
                   help="stop when the share of failed items exceeds F (judged after 20 rows)")
    p.add_argument("--wait-for-resources", type=float, default=None, metavar="SECONDS",
                   help="how long to wait for an autoscaler to add a node that can hold one actor (default 900); "
                        "also waits where no autoscaler is visible instead of refusing at once")


def _at_least_one(s: str) -> int:
    if not s.isdigit() or int(s) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {s!r}")
    return int(s)


def _html_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--html-max-items", type=_at_least_one, default=300, metavar="N",
                   help="papers, sequences, generations and judgments shown in full (default 300); "
                        "the rest are counted")
    p.add_argument("--judged", action="append", default=None, metavar="DIR",
                   help="a judged folder whose scores join the stories (repeatable; found beside RESULTS otherwise)")


def build_parser() -> argparse.ArgumentParser:
    from longsweep.analysis.command import add_parser as add_compare
    from longsweep.jobs import JOBS
    from longsweep.models_cmd import add_models_args

    ap = argparse.ArgumentParser(prog="longsweep", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("models", help="list the model registry")
    add_models_args(p)
    _common(p)

    for name, job_cls in JOBS.items():  # every registered job is a sweep subcommand
        p = sub.add_parser(name, help=job_cls.help)
        job_cls.add_arguments(p)
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

    p = sub.add_parser("report", help="counts, truncation, scores, speed of a results folder; plots")
    p.add_argument("results_dir", help="a sweep folder (results/<sweep_id>) or a folder of them")
    p.add_argument("--plots", default=None, help="write PNG plots into this folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--html", default=None, metavar="FILE", help="write one self-contained HTML page (opens offline)")
    _html_flags(p)
    _common(p)

    p = sub.add_parser("view", help="serve the HTML report on 127.0.0.1, rebuilt on each reload")
    p.add_argument("results_dir", help="a sweep folder (results/<sweep_id>) or a folder of them")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    _html_flags(p)
    _common(p)

    p = sub.add_parser("export", help="write the review seed's JSON layout, or OpenAI Batch output lines")
    p.add_argument("results_dir")
    p.add_argument("--format", choices=("seed", "openai-batch"), default=None,
                   help="seed (default): the review seed's <paper>/<version>_review_run<k>.json under the folder "
                        "--to; openai-batch: a generate sweep's rows as OpenAI Batch output JSONL in the file --to")
    p.add_argument("--to", metavar="PATH", help="the folder (seed) or the file (openai-batch) to write")
    p.add_argument("--openai-batch", metavar="FILE", help="the same as --format openai-batch --to FILE")
    _common(p)

    add_compare(sub)
    from longsweep.reparse import add_parser as add_reparse
    add_reparse(sub)
    return ap


def dispatch(args: argparse.Namespace) -> int:
    from longsweep import commands
    from longsweep.jobs import JOBS
    if args.cmd in JOBS:
        return commands.cmd_sweep(JOBS[args.cmd], args)
    if args.cmd == "models":
        from longsweep.models_cmd import cmd_models
        return cmd_models(args)
    if args.cmd == "reparse":
        from longsweep.reparse import run as run_reparse
        return run_reparse(args)
    if args.cmd == "compare":
        from longsweep.analysis.command import run
        return run(args)
    return getattr(commands, f"cmd_{args.cmd}")(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(dispatch(args))
    except InterruptedSweep as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return int(e.exit_code)
    except LongsweepError as e:
        print(f"{'fatal' if e.exit_code == ExitCode.FATAL else 'error'}: {e}", file=sys.stderr)
        return int(e.exit_code)
    except KeyboardInterrupt:  # Ctrl-C in a command that is not a sweep (report, export, plan)
        print("interrupted: SIGINT", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except OSError as e:  # a write that failed outside a sweep (export or plots to a full disk)
        print(f"fatal: {e.strerror or e} ({e.filename or 'no file name'})", file=sys.stderr)
        return int(ExitCode.FATAL)


if __name__ == "__main__":
    sys.exit(main())
