"""Driver side of the review job: discover papers, ingest + fit them (a Ray Data CPU stage), make items.

    discover (a papers folder) or read_pairs (a pairs CSV) -> prepare (ingest + fit) -> one work item per
    (paper, version, run) with a stable key ``<paper_id>/<version>/run<k>/<model>``, a predicted cost and
    the paper's ``meta`` (known flaws, CSV row, metadata); papers that cannot be prepared are error rows
    written before any model runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from longsweep.config import ModelSpec
from longsweep.errors import ConfigError, ErrorKind
from longsweep.jobs.base import WorkItem
from longsweep.jobs.review.options import ReviewOptions
from longsweep.jobs.review.prepare import prepare_paper
from longsweep.jobs.review.record import PaperRecord
from longsweep.papers.layout import PaperFile
from longsweep.papers.pairs import PaperInput
from longsweep.results import clean_text, error_row
from longsweep.runtime.plan import item_cost

logger = logging.getLogger(__name__)


class Preparer:
    """Ray Data callable class: loads the model's tokenizer once, prepares papers."""

    def __init__(self, *, model: dict, options: dict):
        from longsweep.engines.registry import load_tokenizer
        self.spec = ModelSpec.model_validate(model)
        self.opts = ReviewOptions.model_validate(options)
        self.tok = load_tokenizer(self.spec)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        pf = PaperInput(row["paper_id"], row["version"], Path(row["path"]) if row["path"] else None,
                        row["context"], row["error"], flaws=tuple(json.loads(row["flaws"])))
        try:
            p = prepare_paper(pf, self.spec, self.tok, self.opts)
        except ConfigError:
            raise  # the model's settings, not this paper: every paper would fail the same way
        except Exception as e:  # noqa: BLE001 - one paper's data never ends the preparation of the others
            why = clean_text(f"{type(e).__name__}: {e}")[:500]
            logger.warning("paper %s/%s: preparation failed: %s", pf.paper_id, pf.version, why)
            rec = PaperRecord(paper_id=pf.paper_id, version=pf.version, source=row["path"],
                              error=f"preparing this paper failed: {why}", error_kind=str(ErrorKind.ITEM_FAILED))
            return {"record": rec.model_dump(), "messages": None, "images": []}
        return {"record": p.record.model_dump(), "messages": p.messages, "images": p.images}


def _pf_row(pf: PaperFile) -> dict[str, Any]:
    return {"paper_id": pf.paper_id, "version": pf.version, "path": str(pf.path) if pf.path else None,
            "context": pf.context, "error": pf.error, "flaws": json.dumps(list(getattr(pf, "flaws", ())))}


def _meta(pf: PaperFile) -> dict[str, Any]:
    return pf.meta_dict() if isinstance(pf, PaperInput) else {"known_flaws": [], "csv_row": None, "metadata": {}}


def prepare_all(papers: list[PaperFile], spec: ModelSpec, opts: ReviewOptions, *, use_ray: bool = True,
                concurrency: int = 2) -> list[dict[str, Any]]:
    """Ingest and fit every (paper, version); on Ray the CPUs of the cluster share the work.
    Each result is ``{"record": PaperRecord, "messages": [...] | None, "images": [...], "meta": {...}}``."""
    if not use_ray:
        prep = Preparer(model=spec.model_dump(mode="json"), options=opts.model_dump())
        out = [prep(_pf_row(pf)) for pf in papers]
    else:
        import ray
        ds = ray.data.from_items([_pf_row(pf) for pf in papers], override_num_blocks=max(1, min(len(papers), 64)))
        ds = ds.map(Preparer, fn_constructor_kwargs={"model": spec.model_dump(mode="json"),
                                                     "options": opts.model_dump()},
                    compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, concurrency)), num_cpus=1)
        out = ds.take_all()
        order = {(pf.paper_id, pf.version): i for i, pf in enumerate(papers)}
        out.sort(key=lambda r: order.get((r["record"]["paper_id"], r["record"]["version"]), 0))
    metas = {(pf.paper_id, pf.version): _meta(pf) for pf in papers}
    for r in out:
        r["record"] = PaperRecord.model_validate(r["record"])
        r["meta"] = metas.get((r["record"].paper_id, r["record"].version), {})
    return out


def review_items(prepared: list[dict[str, Any]], spec: ModelSpec, opts: ReviewOptions, sweep_id: str
                 ) -> tuple[list[WorkItem], list[dict[str, Any]]]:
    """Work items (one per run) and the error rows of papers that could not be prepared."""
    items, errors = [], []
    for p in prepared:
        rec: PaperRecord = p["record"]
        for k in range(1, opts.runs + 1):
            key = f"{rec.paper_id}/{rec.version}/run{k}/{spec.name}"
            cols = {**rec.row_fields(), "run": k, "seed": opts.seed + k}
            if rec.error:
                errors.append(error_row(key, rec.error_kind or "bad_input", rec.error, sweep_id=sweep_id,
                                        model=spec.name, backend=spec.backend, **cols))
                continue
            payload = {"record": cols, "messages": p["messages"], "images": p.get("images") or [],
                       "max_tokens": rec.max_tokens, "meta": p.get("meta") or {}}
            items.append(WorkItem(key=key, group=rec.paper_id, payload=payload,
                                  cost=item_cost(rec.tokens_fitted or 0, rec.max_tokens or 0)))
    return items, errors
