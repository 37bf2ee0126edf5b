"""Prompt files read as a stream: a scan of ids, spans for the read tasks, resume as an anti-join.

A prompts file (JSONL, or Parquet with the same columns) is never held whole. ``scan_prompts`` reads it once in
blocks of ~8 MB and keeps one 128-bit hash of each line's id (runtime/stream_hash.py; pyarrow's JSON reader
takes the ids of a clean block, Python the rest); what concerns the file as a whole is refused there, with
today's messages (``InputError``, exit 2): it cannot be read, it has no lines, ids repeat (found by sorting the
hashes; a second pass over the file names each repeated id exactly, so a hash collision is never taken for a
repeat). The file's blocks become the read tasks' spans.

Resume is an anti-join of hashes: the table's keys of this model, read file by file as Arrow, hashed, sorted
(``done_id_hashes``); ``todo_spans`` marks each line not yet written, per span, as packed bits. No Python set or
dict of keys is built. A big file's scan and anti-join run in a child process (runtime/stream_scan.py): the
hashes (16 bytes a line) go to a temporary file there, and the driver keeps the spans and the bits.
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
from longsweep.runtime.stream_hash import empty, equal_to_previous, hash_ids, hash_strings, member, sort_pairs, \
    unique_pairs

logger = logging.getLogger(__name__)

BLOCK_BYTES = 8 << 20  # a JSONL span: one read task
PARQUET_BATCH = 8192  # rows of a Parquet row group read at once
SCAN_THREADS = 2  # blocks parsed and hashed at once by the scan


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
    """A scanned file: its spans, and per line the id's hash and whether the line is blank, held here (a small
    file) or in two ``.npy`` files under ``kept`` (a big one: runtime/stream_scan.py), read back when needed."""

    path: str
    fmt: str  # "jsonl" or "parquet"
    spans: list[Span]
    n_prompts: int
    lines: np.ndarray | None = field(default=None, repr=False)  # (2, n) hashes (blank lines: 0)
    blanks: np.ndarray | None = field(default=None, repr=False)
    kept: str | None = None

    @property
    def hashes(self) -> np.ndarray:
        return self.lines if self.lines is not None else np.load(Path(self.kept) / "hashes.npy", mmap_mode="r")

    @property
    def blank(self) -> np.ndarray:
        return self.blanks if self.blanks is not None else np.load(Path(self.kept) / "blank.npy", mmap_mode="r")

    def keep(self, folder: str) -> "Scan":
        """The same scan with its arrays written under ``folder`` and dropped from memory."""
        np.save(Path(folder) / "hashes.npy", self.hashes)
        np.save(Path(folder) / "blank.npy", self.blank)
        return Scan(self.path, self.fmt, self.spans, self.n_prompts, kept=folder)


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


def _hashed(span: Span, ids: pa.Array | list[str], blank: np.ndarray) -> tuple[Span, np.ndarray, np.ndarray]:
    h = hash_strings(ids) if isinstance(ids, pa.Array) else hash_ids(ids)
    h[:, blank] = 0
    return span, h, blank


def _hashed_blocks(path: Path, fmt: str) -> Iterator[tuple[Span, np.ndarray, np.ndarray]]:
    """Each block's span, hashes and blank lines, in order; a JSONL file's blocks parsed and hashed on
    ``SCAN_THREADS`` threads (pyarrow's reader and numpy let go of the GIL), a few blocks ahead at most."""
    if fmt == "parquet":
        yield from (_hashed(*b) for b in _scan_blocks(path, fmt))
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def work(start: int, stop: int, block: bytes, line: int):
        ids, blank = _block_ids(block, line, path)
        return _hashed(Span(start, stop, line, len(blank)), ids, blank)

    ahead: deque = deque()
    with ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="scan") as ex:
        try:
            line = 1
            for start, stop, block in _jsonl_blocks(path):
                ahead.append(ex.submit(work, start, stop, block, line))
                line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
                while len(ahead) > 2 * SCAN_THREADS:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e})") from None
        finally:
            for f in ahead:
                f.cancel()


def scan_prompts(path: Path | str, keep: str | None = None) -> Scan:
    """One pass over the file: every line's id hashed, the spans, the file-wide refusals; with ``keep``, the
    hashes are written into that folder (``Scan.keep``)."""
    path = Path(path)
    fmt = input_format(path)
    if not path.is_file():
        raise InputError(f"{path}: cannot read (no such file)")
    spans, hashes, blanks = [], [empty()], [np.zeros(0, bool)]
    for span, h, blank in _hashed_blocks(path, fmt):
        spans.append(span)
        hashes.append(h)
        blanks.append(blank)
    h, blank = np.concatenate(hashes, axis=1), np.concatenate(blanks)
    del hashes, blanks
    _release()
    scan = Scan(str(path), fmt, spans, int(len(blank) - blank.sum()), h, blank)
    if scan.n_prompts == 0:
        raise InputError(f"{path}: no prompts (every line is empty)")
    _refuse_repeats(scan)
    return scan.keep(keep) if keep else scan


def _refuse_repeats(scan: Scan) -> None:
    """Repeated ids, each named: sorted hashes find the candidates, a second pass counts their ids exactly."""
    from longsweep.jobs.generate.inputs import repeated_ids_error
    h = scan.hashes[:, ~scan.blank]
    first = np.sort(h[0])  # the first halves alone: a plain sort, no pairs moved
    shared = np.unique(first[1:][first[1:] == first[:-1]])
    del first
    if not len(shared):
        return
    cand = h[:, np.isin(h[0], shared)]  # the few lines whose first half repeats: their whole hashes compared
    s = sort_pairs(cand)
    dup = unique_pairs(s[:, equal_to_previous(s)])
    del h
    if not dup.shape[1]:
        return
    counts: Counter[str] = Counter()
    for span, ids, blank in _scan_blocks(Path(scan.path), scan.fmt):
        ids = ids.to_pylist() if isinstance(ids, pa.Array) else ids
        h = scan.hashes[:, span.first_line - 1: span.first_line - 1 + span.n_lines]
        for i in np.flatnonzero(member(h, dup) & ~blank):
            counts[ids[i]] += 1
    dups = sorted(k for k, c in counts.items() if c > 1)
    if dups:
        raise repeated_ids_error(Path(scan.path), dups)


# --- resume ---------------------------------------------------------------------------------------------------

def done_id_hashes(table_dir, model: str, batch_rows: int = 1 << 16) -> np.ndarray:
    """The distinct hashes of the ids that have a row of ``model`` in the table, pair-sorted: read as Arrow, a
    batch of rows at a time (memory: 16 bytes a key written, not the keys)."""
    import pyarrow.parquet as pq

    from longsweep.store import parquet_files
    suffix = "/" + model
    out = [empty()]
    try:
        files = parquet_files(table_dir)
    except FileNotFoundError:
        files = []
    for f in files:
        try:
            with pq.ParquetFile(f.path, filesystem=f.fs) as pf:
                part = [_done_hashes(b, suffix) for g in range(pf.num_row_groups)
                        for b in pf.iter_batches(batch_size=batch_rows, row_groups=[g], columns=_key_columns(pf, g))]
        except Exception:  # noqa: BLE001 - unreadable or gone (store.read_table skips it too): not done
            continue
        out += part
    done = np.concatenate(out, axis=1)
    del out
    done = unique_pairs(done)
    _release()
    return done


def _key_columns(pf, group: int) -> list[str]:
    """The columns that give a row group's item keys: ``item_key`` alone where its statistics say it has no
    null (half the bytes read), else ``key`` too."""
    names = pf.schema_arrow.names
    if "item_key" not in names:
        return ["key"]
    rg = pf.metadata.row_group(group)
    col = rg.column(names.index("item_key")) if pf.metadata.num_columns == len(names) else None
    stats = col.statistics if col is not None else None
    if stats is not None and stats.has_null_count and stats.null_count == 0:
        return ["item_key"]
    return ["key", "item_key"]


def _done_hashes(batch: pa.RecordBatch, suffix: str) -> np.ndarray:
    names = batch.schema.names
    keys = batch.column("item_key") if "key" not in names else batch.column("key")
    if "key" in names and "item_key" in names:
        keys = pc.coalesce(batch.column("item_key"), keys)
    keys = keys.filter(pc.fill_null(pc.ends_with(keys, suffix), False))
    return hash_strings(pc.utf8_slice_codeunits(keys, 0, -len(suffix)))


def _release() -> None:
    """Give the memory Arrow freed back to the system (its allocator keeps it for a while otherwise)."""
    try:
        pa.default_memory_pool().release_unused()
    except AttributeError:  # an older pyarrow
        pass


def todo_mask(scan: Scan, done: np.ndarray) -> np.ndarray:
    """Per line: a prompt line whose id has no row yet."""
    todo = ~np.asarray(scan.blank)
    if done.shape[1]:
        todo &= ~member(scan.hashes, done)
    return todo


@dataclass(frozen=True)
class Todo:
    """What is left to run, span by span: the spans with work and, per span, its lines' bits (packed)."""

    spans: list[tuple[Span, bytes]]
    n_todo: int

    @staticmethod
    def mask(span: Span, bits: bytes) -> np.ndarray:
        return np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=span.n_lines).astype(bool)


def todo_spans(scan: Scan, table_dir, model: str) -> Todo:
    """The anti-join of the scan and the table's keys of ``model``, cut into the scan's spans."""
    todo = todo_mask(scan, done_id_hashes(table_dir, model))
    out = []
    for span in scan.spans:
        m = todo[span.first_line - 1: span.first_line - 1 + span.n_lines]
        if m.any():
            out.append((span, np.packbits(m).tobytes()))
    return Todo(out, int(todo.sum()))
