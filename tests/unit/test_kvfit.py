"""The KV arithmetic behind `longsweep models --check`'s count of paper versions x runs at once."""

from longsweep.kvfit import (kv_bytes_per_token, kv_room_bytes, prefix_hit, prefix_hit_ideal, versions_at_once,
                             whole_block_tokens)


def test_bytes_per_token():
    assert kv_bytes_per_token(32, 8, 128, 2) == 128 * 1024  # SEA-E / Llama-3.1-8B in bf16
    assert kv_bytes_per_token(30, 3, 64, 2) == 23040  # SmolLM2-135M
    assert kv_bytes_per_token(32, 8, 128, 2, tp=2) == 64 * 1024  # KV heads split over two GPUs


def test_room_after_weights_and_overhead():
    assert kv_room_bytes(80e9, 0.9, 14.48e9) == int(72e9 - 14.48e9 - 2e9)
    assert kv_room_bytes(8e9, 0.9, 14.48e9) == 0


def test_runs_of_a_version_share_their_prompt_blocks():
    # 100 blocks of 16; prompt 100 tokens = 6 whole shared blocks; each run: 100 + 60 tokens -> blocks 6..9 = 4 own
    fit = versions_at_once(100 * 16 * 10, 10, prompt_tokens=100, answer_tokens=60, runs=3, block_size=16)
    assert (fit.kv_tokens, fit.blocks_per_version, fit.versions, fit.sequences) == (1600, 18, 5, 15)
    one = versions_at_once(100 * 16 * 10, 10, prompt_tokens=100, answer_tokens=60, runs=1, block_size=16)
    assert one.versions == 10  # 6 + 4 blocks each


def test_ideal_hit_is_whole_blocks_of_the_later_runs():
    assert whole_block_tokens(300, 128) == 256 and whole_block_tokens(256, 128) == 128  # the last token computed
    assert prefix_hit_ideal([(300, 3)], 128) == 2 * 256 / 900
    assert prefix_hit_ideal([(300, 3), (1000, 3)], 16) == (2 * 288 + 2 * 992) / 3900
    assert prefix_hit_ideal([(300, 1)], 16) == 0.0 and prefix_hit_ideal([], 16) is None


def _row(key, prompt, cached, backend="vllm", status="ok"):
    return {"key": key, "status": status, "prompt_tokens": prompt, "cached_tokens": cached, "backend": backend}


def test_rows_hit_against_their_ideal():
    rows = [_row(f"p1/v1/run{k}/m", 300, 0 if k == 1 else 256) for k in (1, 2, 3)]
    rows += [_row("p2/v1/run1/m", 1000, 0), _row("p2/v1/run2/m", 1000, 896), _row("p2/v1/run3/m", 1, None, status="error")]
    h = prefix_hit(rows, block_size=128)
    assert (h.cached_tokens, h.prompt_tokens, h.prompts, h.rows) == (1408, 2900, 2, 5)
    assert h.rate == 1408 / 2900 and h.ideal == (2 * 256 + 1 * 896) / 2900
    assert prefix_hit(rows).block_size == 16  # vLLM's GPU blocks when the engine did not say
    assert "0.486 of prompt tokens cached, ideal 0.486" in h.line()


def test_no_number_where_the_engine_reports_none():
    assert prefix_hit([_row("a/m", 100, None, "llama_cpp"), _row("b/m", 100, 0, "llama_cpp")]) is None
    assert prefix_hit([_row("a/m", 100, 0, "openai"), _row("b/m", 100, 0, "openai")]) is None
    assert prefix_hit([_row("a/m", 100, 0)]).rate == 0.0  # vLLM's zero is a measured zero
    assert prefix_hit([_row("a/m", 100, 0, status="error")]) is None
