"""kvfit's step cost and layouts (tensor parallel 1, 2, 4): what `longsweep models --check` prints per GPU count."""

import math

import pytest

from longsweep.kvfit import StepCost, _max_of_runs, kv_bytes_per_token, layouts, steady_tokens_per_s

SEA_E = dict(weights_bytes=2 * 7.24e9, params=7.24e9, layers=32, kv_heads=8, head_dim=128)


def test_step_cost_splits_over_tensor_parallel_gpus():
    one = StepCost.for_model(weights_bytes=14e9, params=7e9, kv_bytes_per_token=131072, hbm_bytes_per_s=2e12,
                             prefill_flops=2e14)
    assert one.t_weights == pytest.approx(7e-3) and one.t_kv == pytest.approx(65.536e-9)
    assert one.t_prefill == pytest.approx(70e-6) and one.t_comm == 0.0
    assert one(10, 100, 1000) == pytest.approx(7e-3 + 65.536e-6 + 7e-3)
    two = StepCost.for_model(weights_bytes=14e9, params=7e9, kv_bytes_per_token=65536, tp=2, hbm_bytes_per_s=2e12,
                             prefill_flops=2e14, tp_step_s=1e-3)
    assert (two.t_weights, two.t_kv, two.t_comm) == pytest.approx((3.5e-3, 32.768e-9, 1e-3))


def test_max_of_runs():
    assert _max_of_runs(1, 0.8) == 1.0 and _max_of_runs(3, 0.0) == 1.0
    assert 1.6 < _max_of_runs(3, 0.8) < 1.8  # the longest of 3 log-normal answers, sigma 0.8
    assert _max_of_runs(2, 0.5) < _max_of_runs(3, 0.5) < _max_of_runs(3, 0.8)


def test_steady_state_is_kv_bound_or_seat_bound():
    cost = StepCost(0.01, 0.0, 0.0)
    # equal answers (sigma 0), 1 run, prompts of whole blocks: each sequence holds prompt + half its answer
    n, tps = steady_tokens_per_s(1600 * 10, cost, prompt_tokens=1600, answer_tokens=200, runs=1, answer_sigma=0)
    assert n == pytest.approx(16000 / 1700) and tps == pytest.approx(n / 0.01)
    n3, _ = steady_tokens_per_s(1600 * 10, cost, prompt_tokens=1600, answer_tokens=200, runs=3, answer_sigma=0)
    assert n3 == pytest.approx(16000 / (1600 / 3 + 100))  # three runs share the prompt's blocks
    seats, _ = steady_tokens_per_s(10**9, cost, prompt_tokens=1600, answer_tokens=200, runs=3, max_num_seqs=64)
    assert seats == 64
    assert steady_tokens_per_s(100, cost, prompt_tokens=1600, answer_tokens=200, runs=1) == (0.0, 0.0)


def test_layouts_per_gpu_count():
    out = layouts(4, gpu_bytes=80e9, prompt_tokens=20000, answer_tokens=1200, runs=3, **SEA_E)
    assert sorted((x.tp, x.actors) for x in out) == [(1, 4), (2, 2), (4, 1)]
    assert out == sorted(out, key=lambda x: -x.tokens_per_s)
    by_tp = {x.tp: x for x in out}
    # the weights once per actor: more KV per GPU the more GPUs an actor spans
    assert by_tp[4].kv_tokens > 2 * by_tp[2].kv_tokens > 4 * by_tp[1].kv_tokens
    assert by_tp[1].kv_tokens == (int(72e9 - 14.48e9 - 2e9) // (kv_bytes_per_token(32, 8, 128) * 16)) * 16
    assert [x.tp for x in layouts(2, gpu_bytes=80e9, prompt_tokens=20000, answer_tokens=1200, runs=3, **SEA_E)] \
        in ([1, 2], [2, 1])
    assert [x.tp for x in layouts(3, gpu_bytes=80e9, prompt_tokens=20000, answer_tokens=1200, runs=3, **SEA_E)] == [1]


def test_a_model_too_big_for_one_gpu_needs_tensor_parallel():
    out = {x.tp: x for x in layouts(2, gpu_bytes=16e9, prompt_tokens=20000, answer_tokens=1200, runs=3, **SEA_E)}
    assert out[1].kv_tokens == 0 and out[1].tokens_per_s == 0.0
    assert out[2].tokens_per_s > 0 and math.isfinite(out[2].tokens_per_s)


def test_models_check_prints_the_layouts_best_first():
    from longsweep.config import get_model
    from longsweep.memcheck import check_model
    from longsweep.models_cmd import layout_lines
    spec = get_model("sea-e")
    text = layout_lines(spec, check_model(spec, 80), 3, gpu_counts=(1, 4))
    lines = text.strip().splitlines()
    assert "modelled" in lines[0] and len(lines) == 3
    assert lines[1].strip().startswith("1 GPU(s): tp 1 x 1 actor(s)")
    assert [p.split(" x ")[0].strip() for p in lines[2].split(": ", 1)[1].split(", ")] == ["tp 4", "tp 2", "tp 1"]
    cpu = get_model("smollm2-135m-vllm")
    assert not layout_lines(cpu, check_model(cpu), 3)  # vllm-cpu: no GPU layout
