"""The review sweep: papers x versions x runs x models -> one review row per key.

    discover -> prepare (ingest + fit, a Ray Data CPU stage) -> work items with
    stable keys and predicted costs -> run_sweep (ModelWorker actor pool) -> Parquet

Keys are ``<paper_id>/<version>/run<k>/<model>``; a rerun into the same folder
runs only the keys that are missing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.papers.layout import PaperFile, discover
from longsweep.papers.prepare import ReviewOptions, prepare_paper
from longsweep.papers.review_task import ITEM_COLUMNS
from longsweep.runtime.plan import item_cost
from longsweep.runtime.error_budget import ErrorBudget
from longsweep.runtime.sweep import SweepSummary, run_sweep

logger = logging.getLogger(__name__)


class Preparer:
    """Ray Data callable class: loads the model's tokenizer once, prepares papers."""

    def __init__(self, *, model: dict, options: dict):
        from longsweep.tokens import load_tokenizer
        self.spec = ModelSpec.model_validate(model)
        self.opts = ReviewOptions.model_validate(options)
        self.tok = load_tokenizer(self.spec)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        pf = PaperFile(row["paper_id"], row["version"], Path(row["path"]) if row["path"] else None,
                       row["context"], row["error"])
        p = prepare_paper(pf, self.spec, self.tok, self.opts)
        return {"record": p.record, "messages": p.messages, "images": p.images}


def _pf_row(pf: PaperFile) -> dict[str, Any]:
    return {"paper_id": pf.paper_id, "version": pf.version, "path": str(pf.path) if pf.path else None,
            "context": pf.context, "error": pf.error}


def prepare_all(papers: list[PaperFile], spec: ModelSpec, opts: ReviewOptions, *, use_ray: bool = True,
                concurrency: int = 2) -> list[dict[str, Any]]:
    """Ingest and fit every (paper, version); on Ray the CPUs of the cluster share the work."""
    if not use_ray:
        prep = Preparer(model=spec.model_dump(mode="json"), options=opts.model_dump())
        return [prep(_pf_row(pf)) for pf in papers]
    import ray
    ds = ray.data.from_items([_pf_row(pf) for pf in papers], override_num_blocks=max(1, min(len(papers), 64)))
    ds = ds.map(Preparer, fn_constructor_kwargs={"model": spec.model_dump(mode="json"), "options": opts.model_dump()},
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, concurrency)), num_cpus=1)
    out = ds.take_all()
    order = {(pf.paper_id, pf.version): i for i, pf in enumerate(papers)}
    return sorted(out, key=lambda r: order.get((r["record"]["paper_id"], r["record"]["version"]), 0))


def review_items(prepared: list[dict[str, Any]], spec: ModelSpec, opts: ReviewOptions, sweep_id: str
                 ) -> tuple[list[dict], list[dict]]:
    """Work items (one per run) and the error rows of papers that could not be prepared."""
    items, errors = [], []
    cols = [c for c in ITEM_COLUMNS if c != "run"]
    for p in prepared:
        rec = p["record"]
        for k in range(1, opts.runs + 1):
            key = f"{rec['paper_id']}/{rec['version']}/run{k}/{spec.name}"
            base = {c: rec.get(c) for c in cols}
            base.update(run=k, key=key)
            if rec.get("error"):
                errors.append({**base, "sweep_id": sweep_id, "model": spec.name, "backend": spec.backend,
                               "status": "error", "error": rec["error"], "error_kind": rec["error_kind"],
                               "attempts": 0, "resets": 0, "seed": opts.seed + k})
                continue
            items.append({**base, "group": rec["paper_id"], "messages": p["messages"], "max_tokens": rec["max_tokens"],
                          "seed": opts.seed + k, "images": p.get("images") or [],
                          "cost": item_cost(rec["tokens_fitted"], rec["max_tokens"])})
    return items, errors


def run_review(
    papers_dir: str | Path, *, spec: ModelSpec, sweep_dir: Path, sweep_id: str, opts: ReviewOptions,
    versions: list[str] | None = None, limit: int | None = None, concurrency: tuple[int, int] = (1, 1),
    batch_items: int = 4, policy: WorkerPolicy | None = None, budget: ErrorBudget | None = None,
) -> SweepSummary:
    papers = discover(papers_dir, versions)
    if limit is not None:
        keep_ids = list(dict.fromkeys(pf.paper_id for pf in papers))[:limit]
        papers = [pf for pf in papers if pf.paper_id in keep_ids]
    prepared = prepare_all(papers, spec, opts, concurrency=concurrency[1])
    items, errors = review_items(prepared, spec, opts, sweep_id)
    truncated = sum(1 for p in prepared if p["record"].get("was_truncated"))
    summary = run_sweep(
        items, spec=spec, task="review", table="reviews", sweep_dir=sweep_dir, sweep_id=sweep_id,
        policy=policy, concurrency=concurrency, batch_items=batch_items, error_rows=errors,
        options={"family": spec.prompt_family, "constrain_json": opts.constrain_json, "temperature": opts.temperature,
                 "repetition_penalty": opts.repetition_penalty},
        config={"papers_dir": str(papers_dir), "versions": versions, "limit": limit, "review": opts.model_dump()},
        budget=budget,
    )
    summary.extra["papers x versions"] = len(prepared)
    summary.extra["truncated"] = f"{truncated} of {len(prepared)}"
    return summary
