"""The fast BPE used for planning gives llama.cpp's own ids, id for id.

This is the proof behind ``VERIFIED_PRE``: every real paper, rendered chat prompts
with special tokens, and random Unicode (digits of every script, whitespace runs,
contractions, emoji, CJK, astral planes) tokenize to the same ids both ways.
"""

import random
import struct

import pytest

from longsweep.engines.gguf_bpe import VERIFIED_PRE, fast_bpe_for
from longsweep.engines.gguf_meta import GGUFError, read_metadata
from longsweep.papers.ingest import ingest_pdf

PIECES = ["a  1", "x\t\n 2 ", "it's IT'S we'll they'D", "٣٤ ² ½ Ⅻ ①", "3.14159e-10", "  \n\n  ",
          "中文字符 日本語のテキスト", "😀👍🏽 family 👨‍👩‍👧", "e\u0301 cafe\u0301", "\u00a0nbsp\u2009thin",
          "zero\u200bwidth", "∀x∈ℝ: f(x)≤∑_{i=1}^{n} x_i²", "def f(x):\n\treturn x**2  # c", "<|im_start|>user",
          "ﬁnance ﬂow", "Ελληνικά", "Русский", "العربية ١٢٣", "hello   world   ", " ' ' 's 's", "\r\n\r\n",
          "$100,000.00", "1st 2nd", "~~~***___", "𝔸𝕓𝕔 𝛼𝛽", "a\u3000b", "x\u2028y"]


@pytest.fixture(scope="module")
def pair(smollm):
    from longsweep.engines.llama_tokenizer import LlamaCppTokenizer
    path = smollm.resolve_weights()
    slow, fast = LlamaCppTokenizer(path, fast=False), LlamaCppTokenizer(path)
    assert slow._fast is None and fast._fast is not None, "SmolLM2's vocabulary should take the fast path"
    return slow, fast


def test_smollm2_metadata_is_what_the_fast_path_checks(smollm):
    meta = read_metadata(smollm.resolve_weights(), prefix="tokenizer.ggml.")
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] in VERIFIED_PRE
    assert len(meta["tokenizer.ggml.tokens"]) == len(meta["tokenizer.ggml.token_type"]) == 49152
    assert len(meta["tokenizer.ggml.merges"]) == 48900


def test_every_real_paper_same_ids(pair, papers_dir):
    slow, fast = pair
    total = 0
    for pdf in sorted(papers_dir.glob("*.pdf")):
        md = ingest_pdf(pdf).markdown
        ids = slow.encode(md)
        assert fast._fast.encode(md) == ids, pdf.name  # the fast path itself, not a fallback
        total += len(ids)
    assert total > 200_000


def test_random_unicode_and_prompts_same_ids(pair):
    slow, fast = pair
    rng = random.Random(7)
    for _ in range(1500):
        s = "".join(rng.choice(PIECES) + rng.choice(["", " ", "\n", "  ", "1", ".", "'"])
                    for _ in range(rng.randint(1, 8)))
        assert fast._fast.encode(s) == slow.encode(s), repr(s)
        msgs = [{"role": "system", "content": s}, {"role": "user", "content": s[::-1]}]
        assert fast.encode_messages(msgs) == slow.encode_messages(msgs), repr(s)
    for _ in range(1500):
        s = "".join(chr(rng.choice([rng.randint(32, 0x2FFF), rng.randint(0xE000, 0xFFFD), rng.randint(0x10000, 0x1FFFF),
                                    rng.randint(48, 57)])) for _ in range(rng.randint(1, 30)))
        assert fast.encode(s) == slow.encode(s), repr(s)


def test_bytes_the_vocabulary_cannot_spell_go_to_llama_cpp(pair):
    slow, fast = pair
    for s in ("a\x04b", "x\U00045678y", "(\x1d)"):  # llama.cpp drops these bytes; tiktoken cannot say so
        assert fast._fast.encode(s) is None
        assert fast.encode(s) == slow.encode(s)


def test_not_a_gguf_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"NOPE" + b"\0" * 20)
    with pytest.raises(GGUFError, match="not a GGUF"):
        read_metadata(str(bad))


def _gguf(path, kv: dict[str, str]) -> str:
    s = lambda t: struct.pack("<Q", len(t.encode())) + t.encode()  # noqa: E731
    body = b"".join(s(k) + struct.pack("<I", 8) + s(v) for k, v in kv.items())
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + body)
    return str(path)


def test_unverified_vocabularies_keep_llama_cpp(tmp_path):
    p = _gguf(tmp_path / "m.gguf", {"general.name": "x", "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe"})
    assert read_metadata(p, prefix="tokenizer.") == {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe"}
    assert fast_bpe_for(p) is None
    p2 = _gguf(tmp_path / "s.gguf", {"tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "smollm"})
    assert fast_bpe_for(p2) is None
