"""Prompt files read as a stream: a scan of ids before Ray, spans for the read tasks, resume as an anti-join.

A prompts file (JSONL, or Parquet with the same columns) is never held whole. ``scan_prompts`` reads it once in
blocks of ~8 MB before Ray and keeps one 8-byte hash of each line's id (``hash_strings``: vectorised over
Arrow's string buffers; pyarrow's JSON reader takes the ids of a clean block, Python the rest); what concerns the
file as a whole is refused there, with today's messages (``InputError``, exit 2): it cannot be read, it has no
lines, ids repeat (found by sorting the hashes; a second pass over the file names each repeated id exactly, so
a hash collision is never taken for a repeat). The file's blocks become the read tasks' spans.

Resume is an anti-join of hashes: the table's keys of this model, read file by file as Arrow, hashed, sorted
(``done_id_hashes``); ``todo_mask`` marks each line not yet written (a 64-bit hash: two different ids share one
with a chance of about n_done x n_new / 2**64, 5e-6 at 10M x 9M). No Python set or dict of keys is built.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from longsweep.errors import InputError

logger = logging.getLogger(__name__)

BLOCK_BYTES = 8 << 20  # a JSONL span: one read task
PARQUET_BATCH = 8192  # rows of a Parquet row group read at once


# --- hashing --------------------------------------------------------------------------------------------------

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_P1, _P2 = np.uint64(0x100000001B3), np.uint64(0x9E3779B97F4A7C15)
_POW: dict[int, np.ndarray] = {}


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise (uint64 arithmetic wraps)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _powers(p: np.uint64, n: int) -> np.ndarray:
    have = _POW.get(int(p))
    if have is None or len(have) < n:
        a = np.full(max(n, 256), p, dtype=np.uint64)
        a[0] = 1
        have = _POW[int(p)] = np.cumprod(a, dtype=np.uint64)
    return have


def _hash_slice(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    lengths = np.diff(offsets)
    total = int(offsets[-1])
    pos = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    b = data.astype(np.uint64) + np.uint64(1)
    out = []
    for p in (_P1, _P2):
        cs = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(b * _powers(p, int(lengths.max(initial=0)) + 1)[pos], dtype=np.uint64, out=cs[1:])
        out.append(cs[offsets[1:]] - cs[offsets[:-1]])
    return _mix(out[0] ^ _mix(out[1] + lengths.astype(np.uint64)))


def hash_strings(arr: pa.Array | pa.ChunkedArray, slice_n: int = 65536) -> np.ndarray:
    """A 64-bit hash of each string (null as ""), computed on Arrow's buffers without Python strings."""
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out = [np.zeros(0, dtype=np.uint64)]
    with np.errstate(over="ignore"):
        for ch in chunks:
            ch = pc.fill_null(ch.cast(pa.large_string()), "")
            for lo in range(0, len(ch), slice_n):
                part = ch.slice(lo, slice_n)
                bufs = part.buffers()
                offs = np.frombuffer(bufs[1], dtype=np.int64)[part.offset: part.offset + len(part) + 1]
                data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
                out.append(_hash_slice(offs - offs[0], data[offs[0]: offs[-1]]))
    return np.concatenate(out)


def hash_ids(ids: list[str]) -> np.ndarray:
    return hash_strings(pa.array(ids, pa.large_string()))


# --- the scan -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """What one read task reads: bytes [start, stop) of a JSONL file, or row group ``start`` of a Parquet
    file; its first line's number and its number of lines (blank ones included)."""

    start: int
    stop: int
    first_line: int
    n_lines: int


@dataclass
class Scan:
    path: str
    fmt: str  # "jsonl" or "parquet"
    hashes: np.ndarray = field(repr=False)  # per line (blank lines: 0, and blank set)
    blank: np.ndarray = field(repr=False)
    spans: list[Span]

    @property
    def n_prompts(self) -> int:
        return int(len(self.blank) - self.blank.sum())


def input_format(path: Path) -> str:
    return "parquet" if Path(path).suffix.lower() in (".parquet", ".pq") else "jsonl"


def _jsonl_blocks(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(start offset, stop offset, whole lines) of ~BLOCK_BYTES each; the last line may lack its newline."""
    with open(path, "rb") as f:
        pos, rest = 0, b""
        while True:
            chunk = f.read(BLOCK_BYTES)
            if not chunk:
                break
            buf = rest + chunk
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                rest = buf
                continue
            yield pos, pos + cut, buf[:cut]
            pos, rest = pos + cut, buf[cut:]
        if rest:
            yield pos, pos + len(rest), rest


def _utf8(block: bytes, path: Path) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: cannot read ({e})") from None


def _text(block: bytes, path: Path) -> list[str]:
    lines = _utf8(block, path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


_ID_SCHEMAS = [pa.schema([("id", t), ("custom_id", pa.string())]) for t in (pa.string(), pa.int64())]


def _arrow_ids(block: bytes, n_lines: int) -> pa.Array | None:
    """The ids of a clean block (every line an object with a good id, no blank or batch line), else None."""
    import pyarrow.json as pj
    for schema in _ID_SCHEMAS:
        try:
            t = pj.read_json(io.BytesIO(block), read_options=pj.ReadOptions(block_size=1 << 20),
                             parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return _clean_ids(t, n_lines)
    return None


def _clean_ids(t: pa.Table, n_lines: int) -> pa.Array | None:
    if t.num_rows != n_lines or t.column("custom_id").null_count < t.num_rows:
        return None
    ids = t.column("id").combine_chunks().cast(pa.string())
    if ids.null_count:
        return None
    bad = pc.or_(pc.equal(pc.utf8_trim_whitespace(ids), ""),
                 pc.or_(pc.match_substring(ids, "/"), pc.match_substring(ids, "\x00")))
    return None if pc.any(bad).as_py() else ids


def _block_ids(block: bytes, first_line: int, path: Path) -> tuple[pa.Array | list[str], np.ndarray]:
    """The ids of a block's lines (the line number when it has none) and which lines are blank."""
    from longsweep.jobs.generate.inputs import line_id
    n_lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    ids = _arrow_ids(block, n_lines)
    if ids is not None:
        _utf8(block, path)  # the file's bytes are UTF-8, or it cannot be read
        return ids, np.zeros(n_lines, dtype=bool)
    lines = _text(block, path)
    blank = np.array([not ln.strip() for ln in lines], dtype=bool)
    return [line_id(ln, first_line + i) if not blank[i] else "" for i, ln in enumerate(lines)], blank


def _jsonl_scan(path: Path) -> Iterator[tuple[Span, pa.Array | list[str], np.ndarray]]:
    line = 1
    for start, stop, block in _jsonl_blocks(path):
        ids, blank = _block_ids(block, line, path)
        yield Span(start, stop, line, len(blank)), ids, blank
        line += len(blank)


def _parquet_file(path: Path):
    import pyarrow.parquet as pq
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{path}: cannot read ({e})") from None


def _parquet_scan(path: Path) -> Iterator[tuple[Span, pa.Array | list[str], np.ndarray]]:
    from longsweep.jobs.generate.inputs import line_id
    pf = _parquet_file(path)
    names = pf.schema_arrow.names
    line = 1
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        ids = None
        if "id" in names and "custom_id" not in names:
            col = pf.read_row_group(g, columns=["id"]).column("id")
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_integer(col.type):
                ids = _clean_ids(pa.table({"id": col, "custom_id": pa.nulls(n, pa.string())}), n)
        if ids is None:
            ids = [line_id(row, line + i) for i, row in enumerate(_parquet_rows(pf, g))]
        yield Span(g, g + 1, line, n), ids, np.zeros(n, dtype=bool)
        line += n


def _parquet_rows(pf, group: int) -> Iterator[dict[str, Any]]:
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH, row_groups=[group]):
        yield from batch.to_pylist()


def span_lines(path: str, fmt: str, span: Span) -> Iterator[tuple[int, str | dict[str, Any]]]:
    """(line number, line text or Parquet row) of every line of ``span``, blank lines included."""
    if fmt == "parquet":
        for i, row in enumerate(_parquet_rows(_parquet_file(Path(path)), span.start)):
            yield span.first_line + i, row
        return
    with open(path, "rb") as f:
        f.seek(span.start)
        block = f.read(span.stop - span.start)
    for i, ln in enumerate(_text(block, Path(path))):
        yield span.first_line + i, ln


def _scan_blocks(path: Path, fmt: str):
    try:
        yield from (_parquet_scan(path) if fmt == "parquet" else _jsonl_scan(path))
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e})") from None


def scan_prompts(path: Path | str) -> Scan:
    """One pass over the file before Ray: every line's id hashed, the spans, the file-wide refusals."""
    path = Path(path)
    fmt = input_format(path)
    if not path.is_file():
        raise InputError(f"{path}: cannot read (no such file)")
    spans, hashes, blanks = [], [], []
    for span, ids, blank in _scan_blocks(path, fmt):
        h = hash_strings(ids) if isinstance(ids, pa.Array) else hash_ids(ids)
        h[blank] = 0
        spans.append(span)
        hashes.append(h)
        blanks.append(blank)
    scan = Scan(str(path), fmt, np.concatenate(hashes or [np.zeros(0, np.uint64)]),
                np.concatenate(blanks or [np.zeros(0, bool)]), spans)
    del hashes, blanks
    _release()
    if scan.n_prompts == 0:
        raise InputError(f"{path}: no prompts (every line is empty)")
    _refuse_repeats(scan)
    return scan


def _refuse_repeats(scan: Scan) -> None:
    """Repeated ids, each named: sorted hashes find the candidates, a second pass counts their ids exactly."""
    from longsweep.jobs.generate.inputs import repeated_ids_error
    s = np.sort(scan.hashes[~scan.blank])
    dup = np.unique(s[1:][s[1:] == s[:-1]])
    del s
    if not len(dup):
        return
    counts: Counter[str] = Counter()
    for span, ids, blank in _scan_blocks(Path(scan.path), scan.fmt):
        ids = ids.to_pylist() if isinstance(ids, pa.Array) else ids
        h = scan.hashes[span.first_line - 1: span.first_line - 1 + span.n_lines]
        for i in np.flatnonzero(np.isin(h, dup) & ~blank):
            counts[ids[i]] += 1
    dups = sorted(k for k, c in counts.items() if c > 1)
    if dups:
        raise repeated_ids_error(Path(scan.path), dups)


# --- resume ---------------------------------------------------------------------------------------------------

def done_id_hashes(table_dir, model: str, batch_rows: int = 1 << 16) -> np.ndarray:
    """Sorted hashes of the ids that have a row of ``model`` in the table: read as Arrow, a batch of rows at a
    time (memory: 8 bytes a key written, not the keys)."""
    import pyarrow.parquet as pq

    from longsweep.store import parquet_files
    suffix = "/" + model
    out = [np.zeros(0, dtype=np.uint64)]
    try:
        files = parquet_files(table_dir)
    except FileNotFoundError:
        files = []
    for f in files:
        try:
            with pq.ParquetFile(f.path, filesystem=f.fs) as pf:
                cols = [c for c in ("key", "item_key") if c in pf.schema_arrow.names]
                part = [_done_hashes(b, suffix) for b in pf.iter_batches(batch_size=batch_rows, columns=cols)]
        except Exception:  # noqa: BLE001 - unreadable or gone (store.read_table skips it too): not done
            continue
        out += part
    done = np.concatenate(out)
    del out
    done.sort()
    done = done[np.concatenate(([True], done[1:] != done[:-1]))] if len(done) else done
    _release()
    return done


def _done_hashes(batch: pa.RecordBatch, suffix: str) -> np.ndarray:
    keys = batch.column("key")
    if "item_key" in batch.schema.names:
        keys = pc.coalesce(batch.column("item_key"), keys)
    keys = keys.filter(pc.fill_null(pc.ends_with(keys, suffix), False))
    return hash_strings(pc.utf8_slice_codeunits(keys, 0, -len(suffix)))


def _release() -> None:
    """Give the memory Arrow freed back to the system (its allocator keeps it for a while otherwise)."""
    try:
        pa.default_memory_pool().release_unused()
    except AttributeError:  # an older pyarrow
        pass


def todo_mask(scan: Scan, done: np.ndarray, step: int = 1 << 20) -> np.ndarray:
    """Per line: a prompt line whose id has no row yet."""
    todo = ~scan.blank
    if not len(done):
        return todo
    for lo in range(0, len(todo), step):  # sorted needles: searchsorted walks ``done`` once, ~10x faster
        h = scan.hashes[lo: lo + step]
        order = np.argsort(h)
        hs = h[order]
        found = np.empty(len(h), dtype=bool)
        found[order] = done[np.minimum(np.searchsorted(done, hs), len(done) - 1)] == hs
        todo[lo: lo + step] &= ~found
    return todo
