"""A fed engine's batches (runtime/sweep.plan_fed): the job's order, groups together, longest chains first."""

from longsweep.runtime.sweep import plan_fed


def _it(key, cost=1.0, group=None, n_rows=1):
    return {"key": key, "cost": cost, "group": group, "n_rows": n_rows}


def test_the_jobs_order_not_longest_first():
    items = [_it("short", 10), _it("long", 1000), _it("mid", 100)]
    assert [[x["key"] for x in b] for b in plan_fed(items, 2)] == [["short", "long"], ["mid"]]


def test_a_group_listed_apart_comes_together_where_it_first_appears():
    items = [_it("a1", group="a"), _it("b1", group="b"), _it("a2", group="a"), _it("c")]
    assert [x["key"] for b in plan_fed(items, 10) for x in b] == ["a1", "a2", "b1", "c"]


def test_longer_chains_first_stably():
    items = [_it("s1", group="s", n_rows=2), _it("t1", group="t", n_rows=5), _it("u", n_rows=2),
             _it("t2", group="t", n_rows=5)]
    assert [x["key"] for b in plan_fed(items, 3) for x in b] == ["t1", "t2", "s1", "u"]
    assert [len(b) for b in plan_fed(items, 3)] == [3, 1]


def test_every_item_once_and_empty():
    items = [_it(f"k{i}", cost=i % 7, group=f"g{i % 5}") for i in range(23)]
    out = [x["key"] for b in plan_fed(items, 4) for x in b]
    assert sorted(out) == sorted(x["key"] for x in items) and plan_fed([], 4) == []
