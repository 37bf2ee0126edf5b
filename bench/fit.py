"""Fit speed: milliseconds per paper with exact SmolLM2 counts, at 4k/8k/16k/32k windows.

    python bench/fit.py

Two exact tokenizers side by side in one run: the fast BPE that planning uses
(proven to give llama.cpp's ids, tests/papers/test_fast_bpe.py) and llama.cpp's
own. Reports the median (of each paper's median of 3 runs) and worst time, the
worst budget use when truncated, and that no fitted prompt is over budget.
Ingest is not timed here.
"""

from __future__ import annotations

import statistics
import time

from common import papers, write

from longsweep.config import get_model
from longsweep.papers.fit import fit_paper
from longsweep.papers.ingest import ingest_pdf
from longsweep.papers.prompts import review_messages
from longsweep.engines.registry import load_tokenizer


def windows(tok, docs) -> dict:
    build = lambda t: review_messages(t, family="json", version="v1")  # noqa: E731
    out = {}
    for window in (4096, 8192, 16384, 32768):
        limit = window - 512 - 32
        times, usage, over = [], [], 0
        for d in docs:
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                r = fit_paper(d.markdown, tokenizer=tok, build=build, max_prompt_tokens=limit)
                runs.append((time.perf_counter() - t0) * 1000)
            times.append(statistics.median(runs))
            over += r.prompt_tokens > limit
            if r.was_truncated:
                usage.append(r.usage)
        out[str(window)] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
                            "truncated": len(usage), "min_usage_when_truncated": round(min(usage), 4) if usage else None,
                            "over_budget": over}
        print(f"{tok.name} window {window}: {out[str(window)]}")
    return out


def main() -> None:
    from longsweep.engines.llama_tokenizer import LlamaCppTokenizer
    spec = get_model("smollm2-135m")
    fast = load_tokenizer(spec)
    assert fast._fast is not None, "SmolLM2 should take the fast path"
    slow = LlamaCppTokenizer(spec.resolve_weights(), fast=False)
    docs = [ingest_pdf(f) for f in papers()]
    write("fit", {"command": "python bench/fit.py", "papers": len(docs),
                  "fast_bpe": windows(fast, docs), "llama_cpp_tokenizer": windows(slow, docs),
                  "goal": "<= 20 ms median per paper; 0 over budget; usage >= 0.97 when truncated"})


if __name__ == "__main__":
    main()
