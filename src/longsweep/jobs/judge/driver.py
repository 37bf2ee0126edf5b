"""Driver side of the judge job: source rows -> fitted judge requests -> work items.

One work item is one judge call: a story response or a review scored on every criterion of a ``scores``
rubric (one row per criterion), or one (review, known flaw) of a ``flaws`` rubric (one row). Keys::

    item  <source key>/<judge model>/run<k>                     (scores; its rows are written together)
    row   <source key>/<criterion>/<judge model>/run<k>
    row   <source key>/flaw<NN>/<judge model>/run<k>            (flaws: item key = row key)

Items of one source sequence (or review) and judge run share a ``group``, in turn order, so an actor
serves them one after another and reuses the KV prefix of the earlier turns (and of the rubric).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from longsweep.budget import BudgetError
from longsweep.config import ModelSpec
from longsweep.errors import ErrorKind, InputError
from longsweep.jobs.base import Planned, WorkItem
from longsweep.jobs.judge.fit import Fitted, fit_request
from longsweep.jobs.judge.options import JudgeOptions
from longsweep.jobs.judge.rubric import Rubric
from longsweep.jobs.judge.sources import Source, flaws_from_meta, flaws_from_pairs, read_source, recorded_inputs
from longsweep.results import error_row
from longsweep.runtime.plan import item_cost


def review_text(row: dict[str, Any], mode: str) -> str:
    """The review as the judge sees it: its parsed sections, or the raw answer when asked or unparsed."""
    parts = []
    if mode == "sections":
        if row.get("summary"):
            parts.append(f"Summary:\n{row['summary'].strip()}")
        for name in ("strengths", "weaknesses", "questions"):
            items = [s.strip() for s in (row.get(name) or []) if s and s.strip()]
            if items:
                parts.append(f"{name.capitalize()}:\n" + "\n".join(f"- {s}" for s in items))
    return "\n\n".join(parts) if parts else (row.get("raw_content") or "").strip()


def _ids(rubric: Rubric) -> str:
    return ", ".join(c.id for c in rubric.criteria)


def story_final(rubric: Rubric, prompt: str) -> Callable[[str], str]:
    return lambda text: (f"The writer's latest prompt:\n{prompt}\n\nThe writer's latest response, the one you "
                         f"judge:\n{text}\n\nScore it on {_ids(rubric)}. Answer with the JSON object only.")


def review_final(rubric: Rubric) -> Callable[[str], str]:
    return lambda text: (f"The review you judge:\n{text}\n\nScore it on {_ids(rubric)}. Answer with the JSON "
                         f"object only.")


def flaw_final(flaw: str) -> Callable[[str], str]:
    return lambda text: (f"The review:\n{text}\n\nThe known flaw of the paper:\n{flaw}\n\nDoes the review detect "
                         f"this flaw? Answer with the JSON object only.")


class Planner:
    """Makes the items of one judge model; ``plan()`` returns the ``Planned`` of ``make_items``."""

    def __init__(self, rubric: Rubric, opts: JudgeOptions, inputs: str, spec: ModelSpec, sweep_id: str):
        from longsweep.engines.registry import load_tokenizer
        self.rubric, self.opts, self.inputs, self.spec, self.sweep_id = rubric, opts, inputs, spec, sweep_id
        self.max_tokens = opts.max_tokens or rubric.max_tokens
        self.buffer = spec.safety_buffer if opts.buffer is None else opts.buffer
        self.system = rubric.system_text()
        self.tok = load_tokenizer(spec)
        self.items: list[WorkItem] = []
        self.errors: list[dict[str, Any]] = []

    def plan(self) -> Planned:
        src = read_source(self.inputs, self.rubric.source)
        extra: dict[str, Any] = {"source rows judged": len(src.rows),
                                 "source error rows skipped": src.error_rows}
        if src.unreadable_files or src.duplicates:
            extra["source files unreadable / duplicate keys"] = f"{src.unreadable_files} / {src.duplicates}"
        if self.rubric.kind == "flaws":
            self._flaws(src, extra)
        elif self.rubric.source == "stories":
            self._stories(src)
        else:
            for r in src.rows:
                self._add(r, self._context(r), [], review_final(self.rubric), review_text(r, self.rubric.sees.review),
                          [(c.id, None, None) for c in self.rubric.criteria], group=r["key"])
        config = {"source": self.inputs, "rubric": self.opts.rubric, "rubric_name": self.rubric.name,
                  "rubric_sha256": self.rubric.digest(), "max_tokens": self.max_tokens}
        return Planned(self.items, self.errors, extra=extra, config=config)

    def _stories(self, src: Source) -> None:
        by_item: dict[str, list[dict]] = defaultdict(list)
        for r in src.rows:
            by_item[r.get("item_key") or r["key"]].append(r)
        for ik, rows in by_item.items():
            rows.sort(key=lambda r: r["turn"] or 0)
            for i, r in enumerate(rows):
                earlier = [(e["prompt"] or "", e["response"] or "") for e in rows[:i]]
                history = earlier if self.rubric.sees.earlier_turns else []
                self._add(r, self._context(r), history, story_final(self.rubric, r["prompt"] or ""),
                          r["response"] or "", [(c.id, None, None) for c in self.rubric.criteria], group=ik)

    def _flaws(self, src: Source, extra: dict[str, Any]) -> None:
        o = self.opts
        ids = [r["paper_id"] for r in src.rows if r.get("paper_id")]
        papers, pairs = (o.papers_dir, o.pairs_csv) if o.papers_dir or o.pairs_csv else recorded_inputs(self.inputs)
        if pairs:
            known = flaws_from_pairs(pairs, ids)
        elif papers and Path(papers).is_dir():
            known = flaws_from_meta(papers, ids)
        else:
            raise InputError(f"{self.inputs}: the flaws come from the papers' meta.json or a pairs CSV: give "
                             f"--papers-dir or --pairs-csv (the review sweep recorded {papers!r})")
        without = 0
        for r in src.rows:
            flaws = known.get(r.get("paper_id") or "", [])
            if not flaws:
                without += 1
            text = review_text(r, self.rubric.sees.review)
            for i, flaw in enumerate(flaws, 1):
                self._add(r, self._context(r), [], flaw_final(flaw), text, [(f"flaw{i:02d}", i, flaw)],
                          group=r["key"])
        extra["reviews without known flaws"] = without
        extra["known flaws"] = sum(len(v) for v in known.values())

    def _context(self, r: dict[str, Any]) -> dict[str, Any]:
        """The source row's columns every judgement row carries."""
        return {"rubric_kind": self.rubric.kind, "rubric": self.rubric.name, "source_key": r["key"],
                "source_model": r.get("model"), "source_run": r.get("run"), "sequence_id": r.get("sequence_id"),
                "turn": r.get("turn"), "prompt_name": r.get("prompt_name"), "paper_id": r.get("paper_id"),
                "version": r.get("version")}

    def _add(self, r: dict, ctx: dict, history: list[tuple[str, str]], final: Callable[[str], str], text: str,
             judged: list[tuple[str, int | None, str | None]], group: str) -> None:
        """One item per judge run for source row ``r``; ``judged`` = (criterion, flaw index, flaw) per row."""
        judge, runs = self.spec.name, range(1, self.opts.runs + 1)
        try:
            fitted: Fitted | None = fit_request(self.tok, system=self.system, history=history, final=final, text=text,
                                                window=self.spec.n_ctx, max_tokens=self.max_tokens, buffer=self.buffer)
            reason = None
        except BudgetError as e:
            fitted, reason = None, str(e)
        for k in runs:
            keys = [f"{r['key']}/{c}/{judge}/run{k}" for c, _, _ in judged]
            item_key = keys[0] if len(keys) == 1 else f"{r['key']}/{judge}/run{k}"
            row_ctx = {**ctx, "run": k}
            if fitted is None:  # every row of the item is an error row, under the item's key (resume)
                self.errors += [error_row(key, ErrorKind.PROMPT_TOO_LONG, reason or "", sweep_id=self.sweep_id,
                                          model=judge, backend=self.spec.backend, item_key=item_key, criterion=c,
                                          flaw_index=fi, flaw=fl, **row_ctx)
                                for key, (c, fi, fl) in zip(keys, judged)]
                continue
            row_ctx.update(context_tokens=fitted.context_tokens, tokens_dropped=fitted.tokens_dropped,
                           turns_dropped=fitted.turns_dropped, response_tokens_dropped=fitted.text_tokens_dropped)
            payload = {"messages": fitted.messages, "max_tokens": self.max_tokens,
                       "seed": self.opts.seed + 1000 * k, "columns": row_ctx,
                       "rows": [{"key": key, "criterion": c, "flaw_index": fi, "flaw": fl}
                                for key, (c, fi, fl) in zip(keys, judged)]}
            self.items.append(WorkItem(key=item_key, group=f"{group}/{judge}/run{k}", n_rows=len(keys),
                                       cost=item_cost(fitted.context_tokens, self.max_tokens), payload=payload))
