"""Helpers shared by tests: bad input files, free ports, stopping a Ray head started by a test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path


def write_bad_files(d: Path) -> None:
    """The bad papers every ingest path must survive: empty, not a PDF, corrupt, encrypted,
    image-only, invalid UTF-8 markdown."""
    import pymupdf
    (d / "empty.pdf").write_bytes(b"")
    (d / "notpdf.pdf").write_text("this is plain text, not a PDF")
    (d / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 100)
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret", fontsize=12)
    doc.save(d / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    doc = pymupdf.open()
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 50, 50), False)
    pix.clear_with(128)
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 300, 300), pixmap=pix)
    doc.save(d / "imageonly.pdf")
    (d / "badutf8.md").write_bytes(b"# Title\n\nok text \xff\xfe broken")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_head(head: subprocess.Popen, temp: Path, wait_s: float = 60) -> None:
    """Stop a `ray start --head --block` started in its own session: SIGTERM to `ray start` itself, which
    stops the processes it started (about 3 s; SIGTERM to its whole process group at once took about 30 s),
    then SIGKILL to whatever of its process group is still there ``wait_s`` (+ 5) s later. Only this
    head: `ray stop` would stop every Ray on the machine, the test session's own included."""
    import time
    head.send_signal(signal.SIGTERM)
    try:
        head.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5
    while _group_alive(head.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(head.pid):
        os.killpg(head.pid, signal.SIGKILL)
    head.wait()
    shutil.rmtree(temp, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    """A process of group ``pgid`` is alive (the id cannot be reused while one is)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def work_items(raw: list[dict]) -> list:
    """Generate-job work items from dicts ``{id, key, cost, messages, sampling}``."""
    from longsweep.jobs.base import WorkItem
    return [WorkItem(key=r["key"], cost=r.get("cost", 1), group=r.get("group"),
                     payload={"id": r["id"], "messages": r["messages"], "sampling": r.get("sampling", {})})
            for r in raw]


def run_items(items, spec, out, *, policy=None, errors=(), sweep_id="t", concurrency=(1, 1), batch_items=None,
              limit=None):
    """Run ready-made generate items through the real sweep (actors, Ray Data, Parquet)."""
    from longsweep.jobs.base import Planned
    from longsweep.jobs.generate import GenerateJob, GenerateOptions
    return run_one(GenerateJob(GenerateOptions(), "(items)", policy=policy), spec, out, planned=Planned(list(items), list(errors)),
                   sweep_id=sweep_id, concurrency=concurrency, batch_items=batch_items, limit=limit)


def run_one(job, spec, out, *, planned=None, sweep_id="t", concurrency=(1, 1), batch_items=None, limit=None):
    """One job, one model, into ``out``: the summary (``make_items`` runs unless ``planned`` is given)."""
    from longsweep.runtime.error_limit import ErrorLimit
    from longsweep.runtime.sweep import RunSettings, run_job, run_sweep
    from longsweep.store import Loc
    settings = RunSettings(sweep_dir=out if isinstance(out, Loc) else Path(out), sweep_id=sweep_id, concurrency=concurrency, batch_items=batch_items,
                           limit=limit or ErrorLimit())
    if planned is not None:
        return run_sweep(job, spec, planned, settings)
    (summary,) = run_job(job, [spec], settings)
    return summary


def generate_planned(raw: list[dict], spec):
    """Prompts as the generate job plans them (exact counts; over-long ones are error rows)."""
    import json
    import tempfile
    from longsweep.jobs.generate import GenerateJob, GenerateOptions
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in raw:
            f.write(json.dumps({"id": r["id"], "messages": r["messages"], **r.get("sampling", {})}) + "\n")
    return GenerateJob(GenerateOptions(), f.name).make_items(spec, "t")
