"""Fit speed: milliseconds per paper with exact SmolLM2 counts, at 4k/8k/16k/32k windows.

    python bench/fit.py

Reports the median and worst time, the worst budget use when truncated, and that
no fitted prompt is over budget. Ingest is not timed here.
"""

from __future__ import annotations

import statistics
import time

from common import papers, write

from longsweep.config import get_model
from longsweep.papers.fit import fit_paper
from longsweep.papers.ingest import ingest_pdf
from longsweep.papers.prompts import review_messages
from longsweep.tokens import load_tokenizer


def main() -> None:
    tok = load_tokenizer(get_model("smollm2-135m"))
    docs = [ingest_pdf(f) for f in papers()]
    build = lambda t: review_messages(t, family="json", version="v1")  # noqa: E731
    out = {}
    for window in (4096, 8192, 16384, 32768):
        limit = window - 512 - 32
        times, usage, over = [], [], 0
        for d in docs:
            t0 = time.perf_counter()
            r = fit_paper(d.markdown, tokenizer=tok, build=build, max_prompt_tokens=limit)
            times.append((time.perf_counter() - t0) * 1000)
            over += r.prompt_tokens > limit
            if r.was_truncated:
                usage.append(r.usage)
        out[str(window)] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
                            "truncated": len(usage), "min_usage_when_truncated": round(min(usage), 4) if usage else None,
                            "over_budget": over}
    write("fit", {"command": "python bench/fit.py", "papers": len(docs), "tokenizer": tok.name, "windows": out,
                  "goal": "<= 20 ms median per paper; 0 over budget; usage >= 0.97 when truncated"})


if __name__ == "__main__":
    main()
