"""Scale: `longsweep echo` over N one-line prompts on one node, `--actors 1`, as a user runs it.

Per size N (a JSONL of N prompts written to a temporary folder):

(a) a fresh sweep: the driver's peak resident memory (psutil on the driver process, sampled every 0.2 s; the
    scan's child process, runtime/stream_scan.py, apart) and
    the time from the command's start to its first row on disk; stopped cleanly (SIGINT, as Ctrl-C) once
    10,000 rows are written;
(b) with ``--done F``: the same sweep with F x N keys already in the table (rows written here as Parquet with
    the table's schema, files of 1M rows): the time to the first new row and the driver's peak memory.

    python bench/scale.py --sizes 100000,1000000,10000000 [--done 0.9] [--tag after] [--workdir DIR]
        [--no-scan-cache]   # a big file's scan is kept between runs under the workdir unless this is given

Results go to bench/results/scale-<tag>.json; docs/BENCHMARKS.md has the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, write

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

MODEL = "smollm2-135m"
STOP_AT = 10_000
FILE_ROWS = 1_000_000


def write_prompts(path: Path, n: int) -> None:
    with open(path, "w") as f:
        for lo in range(0, n, 100_000):
            f.write("".join(json.dumps({"id": f"p{i:08d}", "prompt": f"Write one short sentence about the number {i} "
                                        f"and nothing else."}) + "\n" for i in range(lo, min(n, lo + 100_000))))


def write_done(table_dir: Path, n_done: int) -> None:
    """``n_done`` ok rows of the first prompts, as a finished earlier run left them: the table's schema."""
    from longsweep.jobs.echo import EchoJob
    schema = EchoJob.schema()
    table_dir.mkdir(parents=True)
    for lo in range(0, n_done, FILE_ROWS):
        ids = [f"p{i:08d}" for i in range(lo, min(n_done, lo + FILE_ROWS))]
        keys = [f"{i}/{MODEL}" for i in ids]
        n = len(ids)
        cols = {"key": keys, "item_key": keys, "id": ids, "sweep_id": ["before"] * n, "model": [MODEL] * n,
                "backend": ["llama_cpp"] * n, "status": ["ok"] * n, "attempts": [0] * n, "resets": [0] * n,
                "prompt_tokens": [20] * n, "finished_at": ["2025-01-01T00:00:00+00:00"] * n}
        t = pa.table({f.name: pa.array(cols[f.name], f.type) if f.name in cols else pa.nulls(n, f.type)
                      for f in schema}, schema=schema)
        pq.write_table(t, table_dir / f"before-{lo // FILE_ROWS:03d}.parquet")


def new_rows(table_dir: Path, seen: dict[str, int]) -> int:
    """Rows in the table's files that were not there before the run (footers only)."""
    if not table_dir.is_dir():
        return 0
    for f in table_dir.glob("*.parquet"):
        if f.name not in seen:
            try:
                seen[f.name] = pq.ParquetFile(f).metadata.num_rows
            except Exception:  # noqa: BLE001 - still being written
                pass
    return sum(n for name, n in seen.items() if not name.startswith("before-"))


def scan_child_rss(ps: psutil.Process) -> int:
    """The resident memory of the driver's scan child (runtime/child.py), if any."""
    total = 0
    for c in ps.children():
        try:
            if "longsweep.runtime.child" in c.cmdline():
                total += c.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(n: int, done_frac: float, tmp: Path, timeout_s: float, scan_cache: bool = True) -> dict:
    prompts, out = tmp / f"prompts-{n}.jsonl", tmp / f"out-{n}-{done_frac}"
    if not prompts.exists():
        write_prompts(prompts, n)
    n_done = int(n * done_frac)
    if out.exists():
        import shutil
        shutil.rmtree(out)
    if n_done:
        write_done(out / "echoes", n_done)
    log = tmp / f"driver-{n}-{done_frac}.log"
    cmd = [sys.executable, "-m", "longsweep.cli", "echo", str(prompts), "--model", MODEL, "--actors", "1",
           "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "LONGSWEEP_CACHE_DIR": str(tmp / "scans") if scan_cache else "off"}
    env.pop("RAY_ADDRESS", None)
    t0 = time.monotonic()
    with open(log, "w") as lf:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=lf, stderr=subprocess.STDOUT, start_new_session=True)
    ps, peak, first, stopped_at, seen, rows = psutil.Process(proc.pid), 0, None, None, {}, 0
    peak_running, loads, scan_peak = 0, [], 0
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout_s:
            try:
                peak = max(peak, ps.memory_info().rss)
            except psutil.Error:
                break
            scan_peak = max(scan_peak, scan_child_rss(ps))
            loads.append(os.getloadavg()[0])
            if stopped_at is None:
                peak_running = peak
            rows = new_rows(out / "echoes", seen)
            if rows and first is None:
                first = time.monotonic() - t0
            if rows >= STOP_AT and stopped_at is None:
                stopped_at = time.monotonic() - t0
                os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.2)
        rc = proc.wait(timeout=300) if stopped_at is not None else proc.poll()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = "killed (timeout)"
    tail = log.read_text()[-1500:]
    return {"prompts": n, "scan_cache": scan_cache, "jsonl_mb": round(prompts.stat().st_size / 2**20, 1),
            "keys_done_before": n_done,
            "driver_peak_rss_mb": round(peak / 2**20), "driver_peak_rss_mb_until_stop": round(peak_running / 2**20),
            "scan_child_peak_rss_mb": round(scan_peak / 2**20),
            "load_avg_1m": round(sum(loads) / max(len(loads), 1), 1), "first_row_s": round(first, 1) if first else None,
            "rows_10k_s": round(stopped_at, 1) if stopped_at else None, "rows_seen": rows, "exit": rc,
            "log_tail": tail if rc not in (130, 0) else tail[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--done", type=float, default=0.0, help="fraction of the keys already in the table (b)")
    ap.add_argument("--tag", default="after")
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--workdir", help="keep the prompt files here and reuse them (they take a minute at 10M)")
    ap.add_argument("--no-scan-cache", action="store_true",
                    help="scan the file in every run (else a file's scan is kept under the workdir between runs)")
    a = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for n in map(int, a.sizes.split(",")):
            runs.append(run(n, a.done, work, a.timeout, scan_cache=not a.no_scan_cache))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "log_tail"}), flush=True)
    name = f"scale-{a.tag}" + (f"-done{a.done}" if a.done else "")
    flags = " --no-scan-cache" if a.no_scan_cache else ""
    write(name, {"command": f"python bench/scale.py --sizes {a.sizes} --done {a.done} --tag {a.tag}{flags}", "runs": runs,
                 "goal": "driver peak RSS <= 1.5 GB at 10M and flat from 1M to 10M; first row within 60 s"})


if __name__ == "__main__":
    main()
