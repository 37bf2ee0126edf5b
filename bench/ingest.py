"""Ingest speed: pages per second on one core, ours vs pymupdf4llm, same files, same run.

    python bench/ingest.py [--llm-papers N]

pymupdf4llm is slow (1.5-3.6 pages/s), so it runs on the first N papers (default 3);
ours runs on those same papers (the ratio) and on all 14.
"""

from __future__ import annotations

import argparse
import time

from common import papers, write

from longsweep.papers.ingest import ingest_pdf


def rate(fn, files) -> tuple[float, int, float]:
    import pymupdf
    pages = sum(pymupdf.open(f).page_count for f in files)
    t0 = time.process_time()  # CPU time of this process: pages per second per core
    for f in files:
        fn(f)
    dt = time.process_time() - t0
    return pages / dt, pages, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm-papers", type=int, default=3)
    a = ap.parse_args()
    files = papers()
    sub = files[: a.llm_papers]
    ours_all = rate(ingest_pdf, files)
    ours_sub = rate(ingest_pdf, sub)
    try:
        import pymupdf4llm
        theirs = rate(lambda f: pymupdf4llm.to_markdown(str(f), show_progress=False), sub)
        ratio = ours_sub[0] / theirs[0]
        peer = {"pages_per_s": round(theirs[0], 2), "pages": theirs[1], "cpu_s": round(theirs[2], 2)}
    except ImportError as e:
        peer, ratio = {"error": f"pymupdf4llm not importable: {e}"}, None
    write("ingest", {
        "command": "python bench/ingest.py",
        "ours_all_papers": {"pages_per_s": round(ours_all[0], 1), "pages": ours_all[1], "cpu_s": round(ours_all[2], 2)},
        "ours_same_subset": {"pages_per_s": round(ours_sub[0], 1), "pages": ours_sub[1]},
        "pymupdf4llm_same_subset": peer,
        "speedup_vs_pymupdf4llm": round(ratio, 1) if ratio else None,
        "goal": ">= 100 pages/s per core",
    })


if __name__ == "__main__":
    main()
