"""The ``review`` job: papers x versions x runs x models -> one review row per key.

driver.py (discover or read the pairs CSV, ingest + fit, items) -> task.py (worker: generate, parse) -> the
``reviews`` table, and the ``reviewers`` table for multi-reviewer formats. Inputs are a papers folder
(``papers/layout.py``) or a pairs CSV in the review seed's layout (``papers/pairs.py``: ``--pairs-csv FILE``,
or a ``.csv`` file in place of the folder). ``--retry-errors`` reruns the keys whose row is an error
(``longsweep/store/retried.py``, called by the sweep).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pyarrow as pa

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.errors import InputError, LayoutError
from longsweep.jobs.base import Job, Planned, register_job
from longsweep.jobs.review.options import ReviewOptions
from longsweep.jobs.review.record import REVIEWERS_TABLE, ROW_FIELDS
from longsweep.papers.formats import PARSED_FIELDS

_S, _I = pa.string(), pa.int64()


def split_list(s: str | None) -> list[str] | None:
    return [v.strip() for v in s.split(",") if v.strip()] if s else None


def retry_kinds(s: str | None) -> list[str] | None:
    """``--retry-errors``: None (not given), [] (every kind: ``all``), or the kinds named."""
    if s is None:
        return None
    kinds = split_list(s) or []
    return [] if kinds in ([], ["all"]) else kinds


def column_map(s: str | None) -> dict[str, str] | None:
    """``--version-columns v1=v1_folder_path,latest=latest_folder_path``."""
    if not s:
        return None
    out = {}
    for part in split_list(s) or []:
        name, eq, col = part.partition("=")
        if not eq or not name.strip() or not col.strip():
            raise InputError(f"--version-columns: expected NAME=COLUMN,..., got {part!r}")
        out[name.strip()] = col.strip()
    return out


@register_job
class ReviewJob(Job):
    name = "review"
    help = "review sweep: papers x versions x runs on Ray actors"
    table = "reviews"
    columns = ROW_FIELDS[:2] + [("run", _I)] + ROW_FIELDS[2:] + PARSED_FIELDS + [
        ("raw_content", _S), ("parse_issues", pa.list_(_S))]
    Options = ReviewOptions
    options_file = "review.yaml"
    llama_batch = 4
    # tables whose rows belong to a review row (same key and finished_at), with what makes one unique
    companions = {REVIEWERS_TABLE: ("key", "reviewer")}

    def __init__(self, options: ReviewOptions, inputs: str | Path | None = None, *,
                 policy: WorkerPolicy | None = None):
        csv = options.pairs_csv
        self.conflict = bool(csv and inputs and str(inputs) != csv)
        super().__init__(options, str(inputs or csv or ""), policy=policy)

    def default_policy(self) -> WorkerPolicy:
        """Reset the model only on failure; ``max_retries`` retries of an empty or unparseable review."""
        return WorkerPolicy(max_retries=self.options.max_retries)

    @property
    def pairs(self) -> bool:
        """The inputs are a pairs CSV (``--pairs-csv``, or a .csv file in place of the papers folder)."""
        return self.inputs.lower().endswith(".csv")

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("inputs", metavar="papers_dir", nargs="?", default=None,
                       help="PAPERS_DIR/<paper_id>/<version>.pdf|.md, a flat folder, or a pairs CSV")
        p.add_argument("--pairs-csv", default=None, metavar="FILE",
                       help="the review seed's pairs CSV (paperid, <version>_folder_path, flaw_descriptions)")
        p.add_argument("--papers-root", default=None, metavar="DIR",
                       help="pairs CSV: resolve relative folder paths against DIR (default: the CSV's folder)")
        p.add_argument("--allow-outside-root", action="store_true", default=None,
                       help="pairs CSV: read version folders that lead outside that root (.., absolute, symlinks)")
        p.add_argument("--version-columns", default=None, metavar="NAME=COLUMN,...",
                       help="pairs CSV: the version folder columns (default: every <version>_folder_path)")
        p.add_argument("--flaw-context", action="store_true", default=None,
                       help="give the reviewer the paper's known flaws (recorded per row: flaw_context)")
        p.add_argument("--retry-errors", nargs="?", const="all", default=None, metavar="KINDS",
                       help="rerun the keys whose row is an error (every kind, or KIND,...), replacing their rows")
        p.add_argument("--accept-repaired-pdfs", action="store_true", default=None,
                       help="review PDFs that PyMuPDF had to repair (flagged pdf_repaired)")
        p.add_argument("--versions", default=None, help="comma-separated, e.g. v1,v2 (default: all found)")
        p.add_argument("--runs", type=int, default=None)
        p.add_argument("--max-figures", "--max_figures", dest="max_figures", type=int, default=None)
        p.add_argument("--limit", type=int, default=None, help="review only the first N papers")
        p.add_argument("--format", default=None, help="reviewer format: sea, cyclereviewer, criticalneurips, json "
                                                      "(default: the model's prompt_family)")

    @classmethod
    def overrides(cls, args: argparse.Namespace) -> dict[str, Any]:
        return {"runs": args.runs, "max_figures": args.max_figures, "versions": split_list(args.versions),
                "limit": args.limit, "format": args.format, "pairs_csv": args.pairs_csv,
                "version_columns": column_map(args.version_columns), "flaw_context": args.flaw_context,
                "papers_root": args.papers_root, "allow_outside_root": args.allow_outside_root,
                "retry_errors": retry_kinds(args.retry_errors), "accept_repaired_pdfs": args.accept_repaired_pdfs}

    def check_inputs(self) -> None:
        """The inputs as a whole (refused before Ray, exit 2): one of a folder and a CSV, a readable CSV."""
        opts: ReviewOptions = self.options
        if self.conflict:
            raise InputError(f"give a papers folder or --pairs-csv, not both ({self.inputs} and {opts.pairs_csv})")
        if not self.inputs:
            raise InputError("give a papers folder (PAPERS_DIR) or --pairs-csv FILE")
        for flag, given in (("--version-columns", opts.version_columns), ("--papers-root", opts.papers_root),
                            ("--allow-outside-root", opts.allow_outside_root)):
            if given and not self.pairs:
                raise InputError(f"{flag} needs a pairs CSV (--pairs-csv FILE)")
        if self.pairs:
            from longsweep.papers.pairs import read_pairs_file
            pf = read_pairs_file(self.inputs, columns=opts.version_columns, versions=opts.versions,
                                 root=opts.papers_root)
            if opts.flaw_context and not pf.has_flaws:
                raise InputError(f"{self.inputs}: --flaw-context, but the CSV has no flaw_descriptions column")

    def papers(self) -> list:
        """Every (paper, version) to review, with its known flaws (``papers.pairs.PaperInput``)."""
        from longsweep.papers.layout import discover
        from longsweep.papers.pairs import read_pairs, with_meta_flaws
        opts: ReviewOptions = self.options
        self.check_inputs()
        if self.pairs:
            papers = read_pairs(self.inputs, columns=opts.version_columns, versions=opts.versions,
                                root=opts.papers_root, allow_outside_root=opts.allow_outside_root)
        else:
            try:
                papers = with_meta_flaws(self.inputs, discover(self.inputs, opts.versions))
            except LayoutError as e:
                raise InputError(str(e)) from None
        if opts.limit is not None:
            keep = set(list(dict.fromkeys(pf.paper_id for pf in papers))[:opts.limit])
            papers = [pf for pf in papers if pf.paper_id in keep]
        return papers

    def make_items(self, spec: ModelSpec, sweep_id: str) -> Planned:
        from longsweep.jobs.review.driver import prepare_all, review_items
        opts: ReviewOptions = self.options
        prepared = prepare_all(self.papers(), spec, opts, use_ray=True, concurrency=2)
        items, errors = review_items(prepared, spec, opts, sweep_id)
        truncated = sum(1 for p in prepared if p["record"].was_truncated)
        extra = {"papers x versions": len(prepared), "truncated": f"{truncated} of {len(prepared)}"}
        if opts.flaw_context:
            given = sum(1 for p in prepared if p["record"].flaw_context)
            extra["known flaws in the prompt"] = f"{given} of {len(prepared)}"
        return Planned(items, errors, config={"pairs_csv" if self.pairs else "papers_dir": self.inputs}, extra=extra)

    def task(self, ctx):
        from longsweep.jobs.review.task import ReviewTask
        return ReviewTask(ctx, self.options)
