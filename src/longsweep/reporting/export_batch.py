"""``longsweep export RESULTS --openai-batch FILE``: a ``generate`` sweep's rows as OpenAI Batch output lines.

One line per row, in the order of the ids, with the keys ``vllm run-batch`` writes:
``{"id", "custom_id", "response": {"status_code": 200, "request_id", "body": {chat.completion}}, "error": null}``
for an ok row (``choices[0].message.content`` is the text, with ``finish_reason`` and ``usage``), and
``{"id", "custom_id", "response": null, "error": {"code": <error_kind>, "message": <error>}}`` for an
error row. ``custom_id`` is the row's ``id`` (a batch line's own ``custom_id``); with several models in one
folder each line's ``body.model`` says which.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from longsweep.errors import InputError
from longsweep.store import Loc, loc, parquet_files, read_table


def _created(finished_at: str | None) -> int:
    try:
        return calendar.timegm(_dt.datetime.fromisoformat(finished_at).utctimetuple()) if finished_at else 0
    except ValueError:
        return 0


def batch_line(r: dict[str, Any]) -> dict[str, Any]:
    """The output line of one generation row."""
    h = hashlib.sha256(str(r.get("key")).encode()).hexdigest()[:24]
    line: dict[str, Any] = {"id": f"batch_req_{h}", "custom_id": r.get("id"), "response": None, "error": None}
    if r.get("status") != "ok":
        line["error"] = {"code": r.get("error_kind") or "error", "message": r.get("error") or ""}
        return line
    pt, ct = r.get("prompt_tokens") or 0, r.get("completion_tokens") or 0
    body = {"id": f"chatcmpl-{h}", "object": "chat.completion", "created": _created(r.get("finished_at")),
            "model": r.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": r.get("text")},
                         "finish_reason": r.get("finish_reason") or "stop"}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}
    line["response"] = {"status_code": 200, "request_id": f"req_{h}", "body": body}
    return line


def export_batch(results_dir: str | Path | Loc, out: Path) -> int:
    """Write the lines of ``<results_dir>/generations`` to ``out``; returns how many."""
    results_dir = loc(results_dir)
    table_dir = results_dir / "generations"
    t = read_table(table_dir) if table_dir.is_dir() and parquet_files(table_dir) else None
    if t is None:
        raise InputError(f"{results_dir}: not a generate sweep, no generations/*.parquet")
    missing = [c for c in ("id", "text", "status") if c not in t.column_names]
    if missing:
        raise InputError(f"{table_dir}: not generation rows (no column {', '.join(missing)})")
    rows = sorted(t.to_pylist(), key=lambda r: (str(r.get("id")), str(r.get("model"))))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(batch_line(r), ensure_ascii=False) + "\n")
        tmp.replace(out)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return len(rows)
