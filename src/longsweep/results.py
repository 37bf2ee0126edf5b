"""Result rows: the flat Arrow columns every table shares, error rows, and rows Arrow can store.

Where rows go (the sweep folder, its tables, manifest and lease) is the store's (longsweep/store/).
Every column is a promise to users who query it: no catch-all dict columns.
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

import pyarrow as pa

from longsweep.errors import ErrorKind


logger = logging.getLogger(__name__)

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()

COMMON = [
    ("key", _S), ("item_key", _S), ("sweep_id", _S), ("model", _S), ("backend", _S),
    ("status", _S), ("error", _S), ("error_kind", _S), ("attempts", _I), ("resets", _I),
    ("prompt_tokens", _I), ("completion_tokens", _I), ("cached_tokens", _I), ("finish_reason", _S),
    ("server_prompt_tokens", _I), ("prompt_tokens_mismatch", _B),
    ("server_completion_tokens", _I), ("completion_tokens_mismatch", _B),
    ("seed", _I), ("latency_s", _F), ("prefill_s", _F), ("decode_s", _F), ("tokens_per_s", _F),
    ("worker", _S), ("finished_at", _S),
]

def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def error_row(key: str, kind: ErrorKind | str, error: str, *, sweep_id: str, model: str | None = None,
              backend: str | None = None, item_key: str | None = None, **columns: Any) -> dict[str, Any]:
    """The one factory of error rows decided without an engine result (driver or worker)."""
    return {"key": key, "item_key": item_key or key, "sweep_id": sweep_id, "model": model, "backend": backend,
            "status": "error", "error": error, "error_kind": str(ErrorKind(kind)), "attempts": 0, "resets": 0,
            "finished_at": now_iso(), **columns}


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows -> Arrow table with exactly ``schema``'s columns (missing ones are null).

    One value, one row: a row holding a value its column cannot store (an int over int64, a string with a
    lone surrogate, a value of the wrong type) becomes that row's error row (``storable_row``); the other
    rows are stored as they are."""
    unknown = set().union(*(r.keys() for r in rows)) - set(schema.names) if rows else set()
    if unknown:
        raise KeyError(f"columns not in the schema: {sorted(unknown)}")
    full = [{n: r.get(n) for n in schema.names} for r in rows]
    try:
        return pa.Table.from_pylist(full, schema=schema)
    except _UNSTORABLE:
        return pa.Table.from_pylist([storable_row(r, schema) for r in full], schema=schema)


_UNSTORABLE = (pa.ArrowException, OverflowError, UnicodeError, TypeError, ValueError)
_IDENTITY = ("key", "item_key", "sweep_id", "model", "backend", "worker", "finished_at")


def clean_text(v: Any) -> Any:
    """A string every UTF-8 writer takes: lone surrogates (a JSON ``\\udafb`` decodes to one) escaped."""
    return v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v


def storable_row(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """``row`` when each of its values fits its column; else its error row: each value that does not fit is
    null and named in ``error`` (``unstorable_value``), identity columns are escaped, the rest is kept."""
    out, bad = {}, []
    for f in schema:
        v = row.get(f.name)
        try:
            pa.array([v], type=f.type)
        except _UNSTORABLE as e:
            bad.append(f"{f.name!r} cannot be stored as {f.type} ({type(e).__name__}: {clean_text(str(e))[:200]})")
            v = clean_text(v) if f.name in _IDENTITY else None  # a key is kept, escaped
        out[f.name] = v
    if not bad:
        return out
    why = "; ".join(bad)
    if row.get("status") == "error":
        why += f" (the row was already an error, {clean_text(row.get('error_kind'))}: {clean_text(row.get('error'))})"
    if "status" not in schema.names:  # a side table (reviewers): the values are null, the row is kept
        logger.warning("key=%s: stored with nulls: %s", out.get("key"), why)
        return out
    logger.warning("key=%s: row stored as an error: %s", out.get("key"), why)
    out.update(status="error", error_kind=str(ErrorKind.UNSTORABLE_VALUE), error=why)
    return out
