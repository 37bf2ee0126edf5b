"""Ingest + fit of one (paper, version) for one model: the driver-side CPU stage of a review sweep.

The result is a flat record (also what ``longsweep plan`` prints). A paper that
cannot be read is a record with ``error``/``error_kind`` and no messages. The paper's known flaws
(``papers/pairs.PaperInput.flaws``) reach the prompt only with ``flaw_context``; the record says so.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from longsweep.budget import BudgetError, prompt_budget
from longsweep.config import ModelSpec
from longsweep.errors import ConfigError, ErrorKind, IngestError
from longsweep.jobs.review.options import ReviewOptions
from longsweep.jobs.review.record import PaperRecord
from longsweep.papers.fit import fit_paper
from longsweep.papers.ingest import ingest
from longsweep.papers.layout import PaperFile
from longsweep.papers.pairs import flaws_text
from longsweep.papers.formats import format_for_model
from longsweep.papers.prompts import image_slots
from longsweep.tokens import Tokenizer

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    record: PaperRecord
    messages: list[dict[str, str]] | None
    images: list[str] = field(default_factory=list)  # base64 PNGs, in the order of the prompt's placeholders


def read_system_prompt(spec: ModelSpec) -> str | None:
    """The registry's ``system_prompt_file`` (e.g. SEA's own instruction), or None for the format's own."""
    if not spec.system_prompt_file:
        return None
    from longsweep.config import resolve_path
    p = resolve_path(spec.system_prompt_file, spec.registry_dir)
    try:
        return p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"model {spec.name!r}: system_prompt_file {str(p)!r}: {e}") from None


def prepare_paper(pf: PaperFile, spec: ModelSpec, tok: Tokenizer, opts: ReviewOptions) -> Prepared:
    flaws = tuple(getattr(pf, "flaws", ()) or ())
    real = str(pf.path.resolve()) if pf.path else None
    rec: dict[str, Any] = {"paper_id": pf.paper_id, "version": pf.version, "source": str(pf.path) if pf.path else None,
                           "source_path": real,
                           "error": pf.error, "error_kind": ErrorKind.BAD_INPUT.value if pf.error else None,
                           "n_known_flaws": len(flaws) if flaws or not pf.error else None}
    if pf.error:
        return Prepared(PaperRecord(**rec), None)
    give_flaws = bool(opts.flaw_context and flaws)
    context = "\n\n".join(c for c in (pf.context, flaws_text(flaws) if give_flaws else None) if c) or None
    rec["flaw_context"] = give_flaws
    t0 = time.perf_counter()
    tpi = spec.tokens_per_image if opts.tokens_per_image is None else opts.tokens_per_image
    send_images = spec.takes_images and tpi > 0 and opts.max_figures > 0
    kw: dict[str, Any] = {"figure_images": send_images}
    if pf.path.suffix != ".md":
        kw.update(keep_hidden=opts.keep_hidden, tables=opts.tables, accept_repaired=opts.accept_repaired_pdfs)
    try:
        doc = ingest(pf.path, max_figures=opts.max_figures, **kw)
    except IngestError as e:
        rec.update(error=str(e), error_kind=e.kind)
        return Prepared(PaperRecord(**rec), None)
    completion = opts.completion_reserve or spec.completion_reserve
    sent = [f for f in doc.figures if f.data] if send_images else []
    rec.update(pages=doc.n_pages, chars=doc.chars, title=doc.title, n_figures=len(doc.figures), n_images=len(sent),
               hidden_text=bool(doc.hidden), hidden_text_chars=doc.hidden_chars,
               hidden_reasons=sorted({h.reason for h in doc.hidden}), ingest_s=time.perf_counter() - t0,
               pdf_repaired=getattr(doc, "repaired", None))
    # figures sent as images carry their captions beside them; the others' captions stay in the text
    sent_ids = {id(f) for f in sent}
    captions = [f.caption for f in doc.figures if f.caption and id(f) not in sent_ids]
    slots = image_slots([(f.page, f.caption) for f in sent], str(spec.image_placeholder)) if sent else []
    fmt = format_for_model(spec.name, opts.format or spec.prompt_family)
    system = read_system_prompt(spec)
    build = lambda text: fmt.messages(text, version=pf.version, context=context, captions=captions,  # noqa: E731
                                      images=slots, system_prompt=system)
    t1 = time.perf_counter()
    try:
        b = prompt_budget(context_window=spec.n_ctx, completion_reserve=completion, n_images=len(sent),
                          tokens_per_image=tpi, buffer=spec.safety_buffer if opts.buffer is None else opts.buffer)
        fit = fit_paper(doc.markdown, tokenizer=tok, build=build, max_prompt_tokens=b.available,
                        head_ratio=opts.preserve_ratio)
    except BudgetError as e:
        rec.update(error=str(e), error_kind=ErrorKind.BUDGET.value)
        return Prepared(PaperRecord(**rec), None)
    rec.update(budget_tokens=fit.budget_tokens, tokens_full=fit.tokens_full, tokens_fitted=fit.prompt_tokens,
               was_truncated=fit.was_truncated, truncation_stages=fit.stages,
               stage_tokens=[f"{s}:{n}" for s, n in fit.stage_tokens], chars_removed=fit.chars_removed,
               tokens_exact=fit.exact, max_tokens=completion, fit_s=time.perf_counter() - t1)
    return Prepared(PaperRecord(**rec), fit.messages, [base64.b64encode(f.data).decode("ascii") for f in sent])
