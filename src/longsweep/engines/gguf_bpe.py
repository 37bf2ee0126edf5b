"""A fast tokenizer for a GGUF's byte-level BPE vocabulary, equal to llama.cpp's ids.

llama.cpp tokenizes a median paper (55k characters) in ~40 ms on one core here;
tiktoken's Rust BPE does the same vocabulary in ~9 ms. This builds a tiktoken
``Encoding`` from the GGUF's own tokens and merges (rank = merge order) with the
pre-tokenizer llama.cpp uses for that vocabulary, and maps ranks back to the
GGUF's ids.

It is used only where it was proven equal to llama.cpp, id for id:
``VERIFIED_PRE`` lists the pre-tokenizers checked on the 14 real papers and
on a Unicode stress text (tests/papers/test_fast_bpe.py). Any other vocabulary,
and any text with a byte the vocabulary cannot spell, goes to llama.cpp.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from longsweep.engines.gguf_meta import read_metadata

# GPT-2's regex as llama.cpp applies it, after a first split of every digit on its own
# (pre-tokenizer "smollm": ["\p{N}", gpt2]). In one pattern, a whitespace run before a
# digit is kept whole, as it is at the end of a piece in the two-step split.
_DIGITS_THEN_GPT2 = (r"""\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+"""
                     r"""|\s+(?![^\s\p{N}])|\s+""")
PATTERNS = {"smollm": _DIGITS_THEN_GPT2}
VERIFIED_PRE = ("smollm",)
_NORMAL, _UNKNOWN, _CONTROL, _USER = 1, 2, 3, 4


def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-ins for the 256 bytes, reversed."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = list(bs), 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _unspellable(missing: list[int]) -> re.Pattern | None:
    """Characters whose UTF-8 uses a byte missing from the vocabulary."""
    parts = []
    for b in missing:
        if b < 0x80:
            parts.append(re.escape(chr(b)))
        elif 0xC2 <= b <= 0xDF:
            parts.append(f"{chr((b - 0xC0) << 6)}-{chr(((b - 0xC0) << 6) | 0x3F)}")
        elif 0xE0 <= b <= 0xEF:
            parts.append(f"{chr((b - 0xE0) << 12)}-{chr(((b - 0xE0) << 12) | 0xFFF)}")
        elif 0xF0 <= b <= 0xF4:
            parts.append(f"{chr((b - 0xF0) << 18)}-{chr(min(((b - 0xF0) << 18) | 0x3FFFF, 0x10FFFF))}")
        # 0xC0, 0xC1, 0xF5-0xFF never occur in UTF-8
    return re.compile("[" + "".join(parts) + "]") if parts else None


class FastBPE:
    """``encode``/``encode_special`` give llama.cpp's ids; ``None`` from them means: ask llama.cpp."""

    def __init__(self, tokens: list[str], types: list[int], merges: list[str], pre: str, add_bos: bool, bos: int):
        import tiktoken

        dec = _byte_decoder()
        rank_of: dict[bytes, int] = {}
        special: dict[str, int] = {}
        ids = {t: i for i, t in enumerate(tokens)}
        merged_ids = []
        for i, (t, kind) in enumerate(zip(tokens, types)):
            if kind in (_CONTROL, _USER, _UNKNOWN):
                special[t] = i
            elif kind == _NORMAL and len(t) == 1:
                rank_of[bytes([dec[t]])] = i
            elif kind != _NORMAL:
                raise ValueError(f"token type {kind} is not byte-level BPE")
        for k, m in enumerate(merges):
            a, _, b = m.partition(" ")
            merged = bytes(dec[c] for c in a + b)
            if merged in rank_of:  # two merges spell the same bytes: one rank cannot say both
                raise ValueError(f"merge {k} repeats a token")
            merged_ids.append(ids[a + b])
            rank_of[merged] = merged_ids[-1]
        # tiktoken merges by rank: a merged token's rank must follow its merge's priority.
        # Where the GGUF's ids do (they do for SmolLM2), ranks are ids; else ranks are remapped.
        self._rank_to_id: dict[int, int] = {}
        if any(x >= y for x, y in zip(merged_ids, merged_ids[1:])):
            remap = {i: len(tokens) + k for k, i in enumerate(merged_ids)}
            rank_of = {bs: remap.get(i, i) for bs, i in rank_of.items()}
            self._rank_to_id = {r: i for i, r in remap.items()}
        self._enc = tiktoken.Encoding(f"gguf-{pre}", pat_str=PATTERNS[pre], mergeable_ranks=rank_of,
                                      special_tokens=special)
        self._bad = _unspellable([b for b in range(256) if bytes([b]) not in rank_of])
        self.add_bos, self.bos = add_bos, bos

    def _ids(self, ranks: list[int]) -> list[int]:
        if not self._rank_to_id:
            return ranks
        r2i = self._rank_to_id
        return [r2i.get(r, r) for r in ranks]

    def encode(self, text: str) -> list[int] | None:
        """Plain text, special tokens not parsed, no BOS (llama.cpp ``special=False``)."""
        if self._bad is not None and self._bad.search(text):
            return None
        return self._ids(self._enc.encode_ordinary(text))

    def encode_special(self, text: str, add_bos: bool) -> list[int] | None:
        """A rendered prompt: special tokens parsed (llama.cpp ``special=True``), BOS if asked and the model adds one."""
        if self._bad is not None and self._bad.search(text):
            return None
        ids = self._ids(self._enc.encode(text, allowed_special="all"))
        return [self.bos, *ids] if add_bos and self.add_bos else ids


@functools.lru_cache(maxsize=8)
def fast_bpe_for(path: str) -> FastBPE | None:
    """The fast tokenizer of a GGUF file, or ``None`` where it is not proven equal to llama.cpp."""
    meta: dict[str, Any] = read_metadata(path, prefix="tokenizer.ggml.")
    pre = meta.get("tokenizer.ggml.pre")
    if (meta.get("tokenizer.ggml.model") != "gpt2" or pre not in VERIFIED_PRE
            or meta.get("tokenizer.ggml.add_eos_token")):
        return None
    try:
        return FastBPE(meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"],
                       meta["tokenizer.ggml.merges"], pre,
                       bool(meta.get("tokenizer.ggml.add_bos_token", False)),
                       int(meta.get("tokenizer.ggml.bos_token_id", -1)))
    except (KeyError, ValueError):
        return None
