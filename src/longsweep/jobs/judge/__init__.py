"""The ``judge`` job: another job's results judged by registry models on the same actor pool.

    longsweep judge RESULTS_DIR --rubric config/rubrics/story.yaml --model M [--model M2] [--runs K]
    longsweep judge RESULTS_DIR --rubric config/rubrics/flaws.yaml --model M [--papers-dir D | --pairs-csv F]

rubric.py (the file) -> sources.py (the source table, known flaws) -> driver.py (fitted requests, items)
-> task.py (worker: generate, parse.py) -> the ``judgments`` table, one row per (source row, criterion or
flaw, judge model, run). docs/JUDGE.md has the details.
"""

from __future__ import annotations

import argparse
from typing import Any

import pyarrow as pa

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.errors import ConfigError, InputError
from longsweep.jobs.base import Job, Planned, register_job
from longsweep.jobs.judge.options import JudgeOptions
from longsweep.jobs.judge.rubric import load_rubric

_S, _I, _B = pa.string(), pa.int64(), pa.bool_()

COLUMNS = [
    ("rubric_kind", _S), ("rubric", _S), ("source_key", _S), ("source_model", _S), ("source_run", _I),
    ("criterion", _S), ("flaw_index", _I), ("flaw", _S),
    ("score", _I), ("detected", _B), ("evidence", _S), ("reasoning", _S), ("run", _I),
    ("sequence_id", _S), ("turn", _I), ("prompt_name", _S), ("paper_id", _S), ("version", _S),
    ("context_tokens", _I), ("tokens_dropped", _I), ("turns_dropped", _I), ("response_tokens_dropped", _I),
    ("judge_answer", _S),
]


@register_job
class JudgeJob(Job):
    name = "judge"
    help = "judge another job's results (stories, reviews) with a rubric on the actor pool"
    table = "judgments"
    columns = COLUMNS
    Options = JudgeOptions
    options_file = "judge.yaml"
    llama_batch = 4

    def __init__(self, options: JudgeOptions, inputs: str, *, policy: WorkerPolicy | None = None):
        super().__init__(options, inputs, policy=policy)
        if not options.rubric:
            raise ConfigError("judge: give the rubric with --rubric FILE (e.g. config/rubrics/story.yaml)")
        self.rubric = load_rubric(options.rubric)  # a bad rubric is refused before Ray is contacted
        from longsweep.store import loc
        if not (loc(inputs) / self.rubric.source).is_dir():
            raise InputError(f"{inputs}: no {self.rubric.source}/ table inside; rubric {self.rubric.name!r} "
                             f"judges the {self.rubric.source} of a results folder")

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("inputs", metavar="results_dir", help="a results folder of the stories or review job")
        p.add_argument("--rubric", default=None, help="rubric YAML (config/rubrics/story.yaml, flaws.yaml)")
        p.add_argument("--runs", type=int, default=None, help="judge runs per item (agreement across runs)")
        p.add_argument("--max-tokens", type=int, default=None, help="the judge's answer length (default: rubric's)")
        p.add_argument("--temperature", type=float, default=None, help="default: the rubric's")
        p.add_argument("--constrain-json", action=argparse.BooleanOptionalAction, default=None,
                       help="JSON-schema constrained answers (default: the rubric's)")
        p.add_argument("--papers-dir", default=None, help="flaws: papers with meta.json (default: the sweep's)")
        p.add_argument("--pairs-csv", default=None, help="flaws: paperid + flaw_descriptions instead of meta.json")
        p.add_argument("--retry-errors", nargs="?", const="all", default=None, metavar="KINDS",
                       help="judge again the items with an error row (every kind, or KIND,...), replacing their rows")

    @classmethod
    def overrides(cls, args: argparse.Namespace) -> dict[str, Any]:
        from longsweep.jobs.review import retry_kinds
        return {"rubric": args.rubric, "runs": args.runs, "max_tokens": args.max_tokens,
                "temperature": args.temperature, "constrain_json": args.constrain_json,
                "papers_dir": args.papers_dir, "pairs_csv": args.pairs_csv,
                "retry_errors": retry_kinds(args.retry_errors)}

    def default_policy(self) -> WorkerPolicy:
        """No reset after a failed judgement: its cause is the answer, not the model's state, and the KV
        prefix (rubric, earlier turns) serves the next item."""
        return WorkerPolicy(min_chars=1, max_retries=self.options.max_retries, reset_after_chars=None,
                            reset_on_failure=False)

    def make_items(self, spec: ModelSpec, sweep_id: str) -> Planned:
        from longsweep.jobs.judge.driver import Planner
        return Planner(self.rubric, self.options, self.inputs, spec, sweep_id).plan()

    def item_error_rows(self, item, ctx, error: str) -> list[dict[str, Any]]:
        """One error row per row the item would have written (a criterion, or a flaw)."""
        from longsweep.errors import ErrorKind
        rows = item.payload.get("rows") or [{"key": item.key}]
        return [ctx.error_row(r["key"], ErrorKind.ITEM_FAILED, error, item_key=item.key) for r in rows]

    def task(self, ctx):
        from longsweep.jobs.judge.task import JudgeTask
        return JudgeTask(ctx, self.rubric, self.options)
