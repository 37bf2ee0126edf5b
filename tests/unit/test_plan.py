import math

from longsweep.runtime.plan import item_cost, plan_batches


def test_longest_first_and_every_item_once():
    items = [{"key": f"k{i}", "cost": c} for i, c in enumerate([5, 100, 1, 50, 50, 7, 3])]
    batches = plan_batches(items, max_items=2, n_actors=2)
    flat = [it for b in batches for it in b]
    assert sorted(it["key"] for it in flat) == sorted(it["key"] for it in items)
    costs = [it["cost"] for it in flat]
    assert costs == sorted(costs, reverse=True)
    assert all(len(b) <= 2 for b in batches)


def test_cost_cap_closes_batches():
    items = [{"key": f"k{i}", "cost": 10} for i in range(10)]
    batches = plan_batches(items, max_items=100, max_cost=30)
    assert [len(b) for b in batches] == [3, 3, 3, 1]


def test_default_cap_gives_several_batches_per_actor():
    items = [{"key": f"k{i}", "cost": 1} for i in range(64)]
    assert len(plan_batches(items, max_items=1000, n_actors=4)) >= 16


def test_batching_engine_gets_one_full_batch_per_actor():
    from longsweep.runtime.plan import batches_per_actor
    items = [{"key": f"k{i}", "cost": 1} for i in range(8)]
    assert [len(b) for b in plan_batches(items, max_items=32, per_actor=batches_per_actor("vllm"))] == [8]
    assert [len(b) for b in plan_batches(items, max_items=32, n_actors=2, per_actor=1)] == [4, 4]
    assert [len(b) for b in plan_batches(items, max_items=3, per_actor=1)] == [3, 3, 2]  # max_items still holds
    assert len(plan_batches(items, max_items=32, per_actor=batches_per_actor("llama_cpp"))) == 4


def test_empty_and_cost():
    assert plan_batches([]) == []
    assert item_cost(100, 50, decode_weight=2) == 200


def test_packed_batch_carries_each_prompt_once_and_unpacks_to_the_same_items():
    from longsweep.jobs.base import WorkItem
    from longsweep.runtime.plan import pack_batch, unpack_batch
    shared = [{"role": "user", "content": "x" * 10_000}]
    other = [{"role": "user", "content": "y" * 10_000}]
    images = ["i" * 20_000]
    batch = [WorkItem(key=f"p/v1/run{k}", cost=1.0, payload={"messages": shared, "images": images}) for k in (1, 2, 3)]
    batch += [WorkItem(key="q/v1/run1", cost=1.0, payload={"messages": other, "images": []}),
              WorkItem(key="nomsg", cost=1.0, payload={"prompts": []})]
    blob = pack_batch(batch)
    assert len(blob) < 45_000  # two distinct prompts of 10k characters and one image of 20k, not 3x
    assert unpack_batch(blob) == batch


def test_versions_and_runs_of_one_paper_stay_together_longest_group_first():
    from longsweep.runtime.plan import order_items
    items = [{"key": f"{p}/{v}/run{k}", "group": p, "cost": c + (0.5 if v == "v2" else 0)}
             for p, c in (("short", 10), ("long", 100)) for v in ("v1", "v2") for k in (1, 2)]
    items.append({"key": "solo", "cost": 50})
    keys = [it["key"] for it in order_items(items)]
    assert keys == ["long/v1/run1", "long/v1/run2", "long/v2/run1", "long/v2/run2", "solo",
                    "short/v1/run1", "short/v1/run2", "short/v2/run1", "short/v2/run2"]


def test_a_fed_engine_gets_equal_batches_of_a_quarter_of_its_running_set_sixteen_in_flight():
    from longsweep.runtime.sweep import feed_for
    f = feed_for(256, n_items=100_000, n_actors=8)
    assert (f.batch_items, f.in_flight) == (64, 16)
    # too few items to give every actor four full batches: smaller batches, so every actor gets work
    assert feed_for(16, n_items=16, n_actors=1).batch_items == 4
    assert feed_for(16, n_items=16, n_actors=2).batch_items == 2
    assert feed_for(64, n_items=3, n_actors=4).batch_items == 1
    # items of very different costs still make batches of equal counts (no cost cap): each batch keeps
    # `batch_items` sequences in the engine, not one long item alone
    items = [{"key": f"k{i}", "cost": float(1 + 50 * (i % 3))} for i in range(16)]
    batches = plan_batches(items, max_items=4, max_cost=math.inf)
    assert [len(b) for b in batches] == [4, 4, 4, 4]
    assert len(plan_batches(items, max_items=4, n_actors=1, per_actor=8)) > 4  # the cost cap splits them
