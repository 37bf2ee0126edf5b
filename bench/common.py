"""Shared helpers of the benchmarks: where the papers are, and how results are written."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT.parent / "shared" / "papers"
OUT = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "src"))


def papers() -> list[Path]:
    if not PAPERS.exists():
        sys.exit(f"{PAPERS} is absent: the ingest and fit benchmarks need the 14 real papers")
    return sorted(PAPERS.glob("*.pdf"))


def write(name: str, data: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            **data}
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
