"""The vLLM feed's order (engines/vllm_feed.py), on a recording stand-in for ``LLMEngine``: batches that reach
an idle engine shuffled enter it in the plan's order, each batch's items as submitted, with the plan's place
as vLLM's ``priority``. The engine itself runs in tests/vllm and bench/kv_sweep.py."""

import random
import threading
from types import SimpleNamespace

from longsweep.engines.vllm_feed import EngineFeed
from longsweep.runtime.plan import pack_batch, unpack


class RecordingEngine:
    """add_request / step / abort_request / reset_prefix_cache, as the feed calls them; a request ends at the
    step after it entered."""

    def __init__(self):
        self.added: list[tuple[str, int, int]] = []  # (prompt id, priority, step it entered before)
        self.steps = 0
        self._running: list[str] = []

    def add_request(self, rid, prompt, params, priority=0):
        self.added.append((prompt["id"], priority, self.steps))
        self._running.append(rid)

    def step(self):
        self.steps += 1
        done, self._running = self._running, []
        return [SimpleNamespace(request_id=r, finished=True) for r in done]

    def abort_request(self, ids):
        pass

    def reset_prefix_cache(self):
        return True


def test_batches_that_arrive_shuffled_enter_in_the_plans_order():
    engine = RecordingEngine()
    feed = EngineFeed(engine)
    orders = [0, 9, 18, 27]
    random.Random(3).shuffle(orders)  # the order Ray happened to deliver the four calls in
    start = threading.Barrier(len(orders))

    def call(order):
        start.wait()
        return [feed.submit({"id": f"{order}/{i}"}, None, order) for i in range(9)]

    threads = [threading.Thread(target=lambda o=o: [f.result(timeout=10) for f in call(o)]) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    feed.close()
    assert [a[0] for a in engine.added] == [f"{o}/{i}" for o in (0, 9, 18, 27) for i in range(9)]
    assert [a[1] for a in engine.added] == [o for o in (0, 9, 18, 27) for _ in range(9)]
    assert {a[2] for a in engine.added} == {0}  # all 36 entered before the first step


def test_a_request_into_a_busy_engine_is_not_held_and_a_refused_one_fails_alone():
    class Refusing(RecordingEngine):
        def add_request(self, rid, prompt, params, priority=0):
            if prompt["id"] == "bad":
                raise ValueError("prompt too long")
            super().add_request(rid, prompt, params, priority)

    feed = EngineFeed(Refusing())
    bad, good = feed.submit({"id": "bad"}, None, 0), feed.submit({"id": "ok"}, None, 5)
    assert good.result(timeout=10).finished
    assert "too long" in str(bad.exception(timeout=10))
    feed.close()


def test_a_packed_batch_keeps_its_place_in_the_plan():
    from longsweep.jobs.base import WorkItem
    items = [WorkItem(key=f"k{i}", cost=1.0, payload={"messages": [{"role": "user", "content": "x"}]})
             for i in range(3)]
    got, order = unpack(pack_batch(items, 27))
    assert order == 27 and [it.key for it in got] == ["k0", "k1", "k2"]
    assert unpack(pack_batch(items))[1] == 0


def test_packed_batches_carry_the_place_of_their_first_item():
    from longsweep.jobs.base import WorkItem
    from longsweep.runtime.plan import pack_batches
    b = [[WorkItem(key=f"k{i}{j}", cost=1.0, payload={"messages": []}) for j in range(n)] for i, n in enumerate((3, 2, 4))]
    assert [unpack(x)[1] for x in pack_batches(b, 100)] == [100, 103, 105] and pack_batches([]) == []
