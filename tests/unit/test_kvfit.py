"""The KV arithmetic behind `longsweep models --check`'s count of paper versions x runs at once."""

from longsweep.kvfit import kv_bytes_per_token, kv_room_bytes, versions_at_once


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
