"""runtime/several.py: models of one sweep side by side; a failure is said at once and the others finish."""

import threading
import time
from types import SimpleNamespace

import pytest

from longsweep.errors import FatalError
from longsweep.runtime import signals
from longsweep.runtime.several import run_each


def spec(name):
    return SimpleNamespace(name=name)


def test_results_come_back_in_the_order_of_the_specs():
    delays = {"slow": 0.3, "fast": 0.0}

    def fn(s):
        time.sleep(delays[s.name])
        return s.name.upper()

    assert run_each(fn, [spec("slow"), spec("fast")]) == ["SLOW", "FAST"]


def test_a_failed_model_is_said_at_once_the_other_finishes_and_its_summary_rides_on_the_error(capfd):
    said_at = {}
    other_may_end = threading.Event()

    def fn(s):
        if s.name == "broken":
            raise FatalError("no actor of broken could start")
        assert other_may_end.wait(10)  # ends only once the failure line is on stderr
        said_at["ok"] = time.perf_counter()
        return "ok-summary"

    def watch():
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            if "broken failed" in capfd.readouterr().err:
                other_may_end.set()
                return
            time.sleep(0.05)

    w = threading.Thread(target=watch)
    w.start()
    with pytest.raises(FatalError, match="no actor of broken could start") as ei:
        run_each(fn, [spec("broken"), spec("good")])
    w.join()
    assert other_may_end.is_set()  # the line came while the other model still ran
    assert [(s.name, r) for s, r in ei.value.finished] == [("good", "ok-summary")]


def test_an_interrupt_wins_over_other_failures():
    def fn(s):
        if s.name == "a":
            raise FatalError("a broke")
        raise signals.SweepInterrupt("SIGINT")

    with pytest.raises(signals.SweepInterrupt):
        run_each(fn, [spec("a"), spec("b")])


def test_a_nested_interruptible_block_leaves_the_thread_registered_for_the_outer_one():
    ident = threading.get_ident()
    with signals.interruptible():
        with signals.interruptible():
            assert ident in signals._threads
        assert ident in signals._threads  # Progress's block ended; the model's sweep is still interruptible
    assert ident not in signals._threads
