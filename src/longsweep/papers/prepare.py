"""Ingest + fit of one (paper, version) for one model: the CPU stage of a review sweep.

The result is a flat record (also what ``longsweep plan`` prints). A paper that
cannot be read is a record with ``error``/``error_kind`` and no messages.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longsweep.budget import BudgetError, prompt_budget
from longsweep.config import ModelSpec
from longsweep.papers.document import IngestError
from longsweep.papers.fit import fit_paper
from longsweep.papers.ingest import ingest
from longsweep.papers.layout import PaperFile
from longsweep.papers.prompts import image_slots, review_messages
from longsweep.tokens import Tokenizer

logger = logging.getLogger(__name__)


class ReviewOptions(BaseModel):
    """Options of the review seed; unset (None) falls back to the model's registry values."""

    model_config = ConfigDict(extra="forbid")
    preserve_ratio: float = Field(0.7, gt=0, le=1, description="Head share kept by stage 3.")
    buffer: int | None = Field(None, ge=0, description="Safety buffer in tokens (default: model's safety_buffer).")
    completion_reserve: int | None = Field(None, gt=0, description="Tokens for the review (default: model's).")
    tokens_per_image: int | None = Field(None, ge=0, description="Image cost for multimodal models (default: model's).")
    max_figures: int = Field(8, ge=0)
    keep_hidden: bool = Field(False, description="Keep text a human reader cannot see in the prompt.")
    tables: bool = Field(False, description="PDF tables as markdown tables (slow: ~1.4 pages/s).")
    temperature: float = Field(0.0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0, description="1.0 = off; small models loop without ~1.3.")
    runs: int = Field(1, ge=1)
    seed: int = Field(0, ge=0, description="Base seed; run k uses seed + k.")
    constrain_json: bool = Field(True, description="Use the engine's JSON-schema constraint for the json family.")


@dataclass
class Prepared:
    record: dict[str, Any]
    messages: list[dict[str, str]] | None
    images: list[str] = field(default_factory=list)  # base64 PNGs, in the order of the prompt's placeholders


def prepare_paper(pf: PaperFile, spec: ModelSpec, tok: Tokenizer, opts: ReviewOptions) -> Prepared:
    rec: dict[str, Any] = {"paper_id": pf.paper_id, "version": pf.version, "source": str(pf.path) if pf.path else None,
                           "error": pf.error, "error_kind": "bad_input" if pf.error else None}
    if pf.error:
        return Prepared(rec, None)
    t0 = time.perf_counter()
    tpi = spec.tokens_per_image if opts.tokens_per_image is None else opts.tokens_per_image
    send_images = spec.takes_images and tpi > 0 and opts.max_figures > 0
    kw: dict[str, Any] = {"figure_images": send_images}
    if pf.path.suffix != ".md":
        kw.update(keep_hidden=opts.keep_hidden, tables=opts.tables)
    try:
        doc = ingest(pf.path, max_figures=opts.max_figures, **kw)
    except IngestError as e:
        rec.update(error=str(e), error_kind=e.kind)
        return Prepared(rec, None)
    completion = opts.completion_reserve or spec.completion_reserve
    sent = [f for f in doc.figures if f.data] if send_images else []
    rec.update(pages=doc.n_pages, chars=doc.chars, title=doc.title, n_figures=len(doc.figures), n_images=len(sent),
               hidden_text=bool(doc.hidden), hidden_text_chars=doc.hidden_chars,
               hidden_reasons=sorted({h.reason for h in doc.hidden}), ingest_s=time.perf_counter() - t0)
    # figures sent as images carry their captions beside them; the others' captions stay in the text
    sent_ids = {id(f) for f in sent}
    captions = [f.caption for f in doc.figures if f.caption and id(f) not in sent_ids]
    slots = image_slots([(f.page, f.caption) for f in sent], str(spec.image_placeholder)) if sent else []
    build = lambda text: review_messages(text, family=spec.prompt_family, version=pf.version, context=pf.context,
                                         captions=captions, images=slots)
    t1 = time.perf_counter()
    try:
        b = prompt_budget(context_window=spec.n_ctx, completion_reserve=completion, n_images=len(sent),
                          tokens_per_image=tpi, buffer=spec.safety_buffer if opts.buffer is None else opts.buffer)
        fit = fit_paper(doc.markdown, tokenizer=tok, build=build, max_prompt_tokens=b.available,
                        head_ratio=opts.preserve_ratio)
    except BudgetError as e:
        rec.update(error=str(e), error_kind="budget")
        return Prepared(rec, None)
    rec.update(budget_tokens=fit.budget_tokens, tokens_full=fit.tokens_full, tokens_fitted=fit.prompt_tokens,
               was_truncated=fit.was_truncated, truncation_stages=fit.stages,
               stage_tokens=[f"{s}:{n}" for s, n in fit.stage_tokens], chars_removed=fit.chars_removed,
               tokens_exact=fit.exact, max_tokens=completion, fit_s=time.perf_counter() - t1)
    return Prepared(rec, fit.messages, [base64.b64encode(f.data).decode("ascii") for f in sent])
