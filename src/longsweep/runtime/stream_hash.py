"""128-bit hashes of ids, and exact set operations on them, without a Python object per id.

A streamed sweep (runtime/stream.py) tells ids apart by hash: repeats in the prompt file, and the ids already
written (resume). Each id gets two independent 64-bit halves: a keyed SipHash-2-4 (pandas' ``hash_array``, in
C) and a pair of polynomial hashes mixed by splitmix64's finaliser (numpy, over Arrow's string buffers). Hashes
are arrays of shape (2, n): row 0 is the SipHash half (the sort key), row 1 the other half. Two different ids
share a hash with a chance of about n_done x n_new / 2**128 (1e-25 at 10M x 9M): a resume never skips a new
prompt in practice, and a repeat is still named only after its ids are compared as strings
(runtime/stream_input.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIP_KEY = "longsweep.ids.v1"  # 16 bytes: SipHash's key (fixed: hashes are compared across runs)

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


def _poly(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
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


def _sip(part: pa.Array) -> np.ndarray:
    from pandas.util import hash_array
    return hash_array(part.to_numpy(zero_copy_only=False), hash_key=SIP_KEY, categorize=False)


def hash_strings(arr: pa.Array | pa.ChunkedArray, slice_n: int = 65536) -> np.ndarray:
    """The (2, n) hash of each string (null as "")."""
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out = [np.zeros((2, 0), dtype=np.uint64)]
    with np.errstate(over="ignore"):
        for ch in chunks:
            ch = pc.fill_null(ch.cast(pa.large_string()), "")
            for lo in range(0, len(ch), slice_n):
                part = ch.slice(lo, slice_n)
                bufs = part.buffers()
                offs = np.frombuffer(bufs[1], dtype=np.int64)[part.offset: part.offset + len(part) + 1]
                data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
                out.append(np.stack([_sip(part), _poly(offs - offs[0], data[offs[0]: offs[-1]])]))
    return np.concatenate(out, axis=1)


def hash_ids(ids: list[str]) -> np.ndarray:
    return hash_strings(pa.array(ids, pa.large_string()))


def empty() -> np.ndarray:
    return np.zeros((2, 0), dtype=np.uint64)


def _runs(first: np.ndarray) -> np.ndarray:
    """Positions of a sorted array that belong to a run of equal values (rare: 64-bit halves)."""
    same = np.flatnonzero(first[1:] == first[:-1])
    return np.unique(np.concatenate([same, same + 1]))


def sort_pairs(h: np.ndarray) -> np.ndarray:
    """``h`` sorted by both halves: by the first with numpy's sort, then the rare runs of an equal first half by
    the second."""
    s = h[:, np.argsort(h[0])]
    rows = _runs(s[0])
    if len(rows):
        sub = s[:, rows]
        s[:, rows] = sub[:, np.lexsort((sub[1], sub[0]))]
    return s


def equal_to_previous(s: np.ndarray) -> np.ndarray:
    """Per position of a pair-sorted array: the same pair as the position before (False for the first)."""
    out = np.zeros(s.shape[1], dtype=bool)
    out[1:] = (s[0, 1:] == s[0, :-1]) & (s[1, 1:] == s[1, :-1])
    return out


def unique_pairs(h: np.ndarray) -> np.ndarray:
    """The distinct hashes of ``h``, pair-sorted: a set to look up with ``member``."""
    s = sort_pairs(h)
    return s[:, ~equal_to_previous(s)]


def member(needles: np.ndarray, ref: np.ndarray, step: int = 1 << 20) -> np.ndarray:
    """Per hash of ``needles``: is it in ``ref`` (from ``unique_pairs``)."""
    found = np.zeros(needles.shape[1], dtype=bool)
    if not ref.shape[1] or not needles.shape[1]:
        return found
    first = np.ascontiguousarray(ref[0])
    for lo in range(0, needles.shape[1], step):  # sorted needles: searchsorted walks ``first`` once, ~10x faster
        h = needles[:, lo: lo + step]
        order = np.argsort(h[0])
        i = np.minimum(np.searchsorted(first, h[0, order]), len(first) - 1)
        hit = np.empty(len(order), dtype=bool)
        hit[order] = (first[i] == h[0, order]) & (ref[1, i] == h[1, order])
        found[lo: lo + step] = hit
    runs = _runs(first)
    if len(runs):  # a first half shared by several pairs: the needle may equal a later one of its run
        shared = np.unique(first[runs])
        for c in np.flatnonzero(~found & np.isin(needles[0], shared)):
            lo, hi = np.searchsorted(first, needles[0, c], "left"), np.searchsorted(first, needles[0, c], "right")
            found[c] = bool((ref[1, lo:hi] == needles[1, c]).any())
    return found
