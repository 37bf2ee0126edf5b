"""A worker process that dies part way: Ray restarts the actor (which reloads the model) and retries."""

import pyarrow.parquet as pq
import pytest

from longsweep.config import WorkerPolicy
from helpers import run_items, work_items

pytestmark = pytest.mark.integration


def test_actor_death_midway_loses_nothing_and_duplicates_nothing(ray_local, smollm, tmp_path):
    marker = tmp_path / "died-once"
    items = work_items([{"id": f"p{i}", "key": f"p{i}", "cost": 10 - i, "messages": [{"role": "user", "content": f"Say {i}."}],
                         "sampling": {"max_tokens": 8}} for i in range(6)])
    policy = WorkerPolicy(min_chars=1, fault_injection={"p3": f"exit_once:{marker}"})
    s = run_items(items, smollm, tmp_path, policy=policy, batch_items=1)
    assert marker.exists(), "the worker did not die: the fault was not injected"
    keys = [r["key"] for r in pq.read_table(tmp_path / "generations").to_pylist()]
    assert sorted(keys) == [f"p{i}" for i in range(6)]
    assert s.ok == 6
    workers = {r["worker"] for r in pq.read_table(tmp_path / "generations").to_pylist()}
    assert len(workers) >= 2  # the restarted actor is a new process that loaded the model again


def _items(n, *, max_tokens=8, costs=None):
    return work_items([{"id": f"p{i:02d}", "key": f"p{i:02d}", "cost": (costs or {}).get(i, 1),
                        "messages": [{"role": "user", "content": f"Write one sentence about the number {i}."}],
                        "sampling": {"max_tokens": max_tokens}} for i in range(n)])


def test_engine_exception_on_one_item_is_its_row_and_the_actor_keeps_serving(ray_local, smollm, tmp_path):
    policy = WorkerPolicy(min_chars=1, max_retries=2, fault_injection={"p02": "raise"})
    s = run_items(_items(6), smollm, tmp_path, policy=policy, batch_items=3)
    rows = {r["key"]: r for r in pq.read_table(tmp_path / "generations").to_pylist()}
    assert sorted(rows) == [f"p{i:02d}" for i in range(6)]
    bad = rows.pop("p02")
    assert bad["status"] == "error" and bad["error_kind"] == "engine_error" and bad["attempts"] == 3
    assert "injected engine fault on p02" in bad["error"]
    assert all(r["status"] == "ok" and r["text"] for r in rows.values())
    assert len({r["worker"] for r in rows.values()} | {bad["worker"]}) == 1  # same actor, no restart
    assert s.errors_by_kind == {"engine_error": 1} and s.stopped is None


def test_error_limit_stops_the_sweep_then_resume_finishes_it(ray_local, smollm, tmp_path):
    from longsweep.runtime.error_limit import ErrorLimit
    # the faulty items are the most costly, so they run first; the 36 others take longer than the errors take
    # to land as files on a loaded machine (with 12 others, all had run before the limit could act, twice)
    n, faulty = 40, range(4)
    items = _items(n, max_tokens=48, costs={i: 100 for i in faulty})
    policy = WorkerPolicy(min_chars=1, max_retries=1, fault_injection={f"p{i:02d}": "raise" for i in faulty})
    s = run_items(items, smollm, tmp_path, policy=policy, batch_items=1, limit=ErrorLimit(max_errors=2))
    assert s.stopped and "> --max-errors 2" in s.stopped
    first = pq.read_table(tmp_path / "generations").to_pylist()
    keys = [r["key"] for r in first]
    assert len(keys) == len(set(keys)) and 3 <= len(keys) < n, "the sweep did not stop early"
    assert sum(r["status"] == "error" for r in first) >= 3
    # a rerun without the fault and the budget runs only the rest; every key once
    s2 = run_items(items, smollm, tmp_path, policy=WorkerPolicy(min_chars=1), batch_items=4)
    rows = pq.read_table(tmp_path / "generations").to_pylist()
    assert sorted(r["key"] for r in rows) == [f"p{i:02d}" for i in range(n)]
    assert s2.skipped == len(keys) and s2.stopped is None
    before = {r["key"]: r["finished_at"] for r in first}
    assert all(r["finished_at"] == before[r["key"]] for r in rows if r["key"] in before)  # nothing rewritten


def test_cli_error_limit_exit_code_and_counts_by_kind(ray_local, tmp_path, capsys):
    import json
    from longsweep.cli import main
    from longsweep.errors import ExitCode
    prompts = tmp_path / "p.jsonl"
    long = "word " * 9000  # longer than SmolLM2's 8,192-token window: refused before any engine runs
    lines = [{"id": f"long{i}", "prompt": long} for i in range(3)] + [{"id": f"ok{i}", "prompt": "Hi"} for i in range(3)]
    prompts.write_text("\n".join(json.dumps(x) for x in lines))
    code = main(["generate", str(prompts), "--model", "smollm2-135m", "--out", str(tmp_path / "o"),
                 "--max-tokens", "8", "--max-errors", "1"])
    out = capsys.readouterr().out
    assert code == ExitCode.STOPPED
    assert "errors: 3 (prompt_too_long=3)" in out and "STOPPED EARLY: 3 error rows > --max-errors 1" in out
    rows = pq.read_table(tmp_path / "o" / "generations").to_pylist()
    assert sorted(r["key"].split("/")[0] for r in rows) == ["long0", "long1", "long2"]  # ok items never started


def test_engine_that_cannot_load_stops_the_sweep_with_one_clear_message(ray_local, smollm, tmp_path):
    import time
    from longsweep.errors import FatalError
    t0 = time.perf_counter()
    with pytest.raises(FatalError) as e:
        run_items(_items(4), smollm, tmp_path, policy=WorkerPolicy(fault_injection={"load": "raise"}),
                  concurrency=(2, 2), batch_items=1)
    msg = str(e.value)
    assert "could not start" in msg and "injected: model smollm2-135m cannot load" in msg
    assert "\n" not in msg and len(msg) < 800  # one sentence, not Ray's traceback
    assert time.perf_counter() - t0 < 120  # stops instead of retrying forever
    import json
    assert "cannot load" in json.loads((tmp_path / "manifest.json").read_text())["latest"]["fatal"]


def test_dead_engine_ends_its_actor_and_ray_restarts_it(ray_local, smollm, tmp_path):
    """An engine that is dead (not one failed request) must not turn every later item into an error row:
    the worker process exits, Ray restarts the actor with a fresh engine and runs the batch again."""
    marker = tmp_path / "dead-once"
    policy = WorkerPolicy(min_chars=1, fault_injection={"p02": f"dead_once:{marker}"})
    s = run_items(_items(5), smollm, tmp_path / "out", policy=policy, batch_items=2)
    assert marker.exists(), "the engine death was not injected"
    rows = pq.read_table(tmp_path / "out" / "generations").to_pylist()
    assert sorted(r["key"] for r in rows) == [f"p{i:02d}" for i in range(5)]
    assert s.ok == 5 and s.errors == 0
    by_key = {r["key"]: r for r in rows}
    assert by_key["p02"]["worker"] != marker.read_text()  # the batch ran again in a new process
