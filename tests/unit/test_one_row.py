"""One value, one row: a value Arrow cannot store makes its own row an error row, never its batch's end."""

from __future__ import annotations

import json

import pyarrow as pa

from longsweep.results import COMMON
from longsweep.results import to_table

SCHEMA = pa.schema(COMMON + [("id", pa.string()), ("text", pa.string())])


def _row(key: str, **kw):
    return {"key": key, "item_key": key, "sweep_id": "s", "model": "m", "backend": "openai", "status": "ok",
            "attempts": 1, "resets": 0, "worker": "w", "finished_at": "2026-12-01T00:00:00+00:00", **kw}


def test_a_seed_over_int64_and_a_lone_surrogate_are_their_own_error_rows():
    rows = [_row("a", id="a", seed=2**64, text="fine"), _row("b", id="b", text="ok"),
            _row("c", id="c", text="bad \udafb answer"), _row("d", id="d", text="also ok", seed=7)]
    t = to_table(rows, SCHEMA)
    got = {r["key"]: r for r in t.to_pylist()}
    assert list(got) == ["a", "b", "c", "d"]
    assert got["b"]["status"] == "ok" and got["b"]["text"] == "ok"
    assert got["d"]["status"] == "ok" and got["d"]["seed"] == 7
    a, c = got["a"], got["c"]
    assert a["status"] == "error" and a["error_kind"] == "unstorable_value" and "seed" in a["error"]
    assert a["seed"] is None and a["text"] == "fine"  # the rest of the row is kept
    assert c["status"] == "error" and c["error_kind"] == "unstorable_value" and "text" in c["error"]
    assert c["text"] is None and c["model"] == "m" and c["finished_at"]
    json.dumps(t.to_pylist())  # every stored string is valid UTF-8


def test_an_error_row_keeps_its_own_reason_and_a_bad_key_is_escaped():
    rows = [_row("e", status="error", error="server said \udc80", error_kind="http_error"),
            _row("k\udafb", id="x")]
    got = to_table(rows, SCHEMA).to_pylist()
    assert got[0]["status"] == "error" and "http_error" in got[0]["error"] and "error" in got[0]["error"]
    assert "\\udc80" in got[0]["error"]  # the server's words, escaped
    assert got[1]["key"] == "k\\udafb" and got[1]["error_kind"] == "unstorable_value"


def test_a_value_of_the_wrong_type_names_its_field():
    (r,) = to_table([_row("t", id={"not": "a string"})], SCHEMA).to_pylist()
    assert r["status"] == "error" and r["id"] is None and "'id'" in r["error"]


def test_the_prompt_line_check_refuses_a_seed_outside_int64(tmp_path):
    from longsweep.jobs.generate.inputs import read_prompts
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"id": "big", "prompt": "hi", "seed": 18446744073709551616}) + "\n"
                 + json.dumps({"id": "neg", "prompt": "hi", "seed": -2**63 - 1}) + "\n"
                 + json.dumps({"id": "max", "prompt": "hi", "max_tokens": 2**70}) + "\n"
                 + json.dumps({"id": "fine", "prompt": "hi", "seed": 2**63 - 1}) + "\n")
    out = read_prompts(f, max_tokens=None)
    assert [p["id"] for p in out.prompts] == ["fine"]
    errs = dict(out.errors)
    assert "seed" in errs["big"] and "seed" in errs["neg"] and "max_tokens" in errs["max"]


def test_a_task_that_raises_on_one_item_costs_that_item_only():
    """The worker runs a failed batch's items alone; the one that raises again is its own error row."""
    import asyncio

    from longsweep.errors import FatalEngineError
    from longsweep.jobs.base import WorkItem
    from longsweep.jobs.generate import GenerateJob, GenerateOptions
    from longsweep.runtime.worker import ModelWorker

    class Ctx:
        worker_id = "w"

        def error_row(self, key, kind, error, **cols):
            return {"key": key, "status": "error", "error_kind": str(kind), "error": error, **cols}

    class Task:
        calls: list[list[str]] = []

        async def run(self, items):
            self.calls.append([it.key for it in items])
            if any(it.payload.get("boom") == "fatal" for it in items):
                raise FatalEngineError("no request can succeed")
            if any(it.payload.get("boom") for it in items):
                raise KeyError("payload field \udafb")
            return [{"key": it.key, "status": "ok", "id": it.payload["id"]} for it in items]

    w = ModelWorker.__new__(ModelWorker)
    w.task, w.ctx, w.job = Task(), Ctx(), GenerateJob(GenerateOptions(), "(items)")
    items = [WorkItem(key=k, cost=1, payload={"id": k, **({"boom": 1} if k == "b" else {})}) for k in "abc"]
    rows = asyncio.run(w._rows(items))
    assert [(r["key"], r["status"]) for r in rows] == [("a", "ok"), ("b", "error"), ("c", "ok")]
    assert rows[1]["error_kind"] == "item_failed" and "KeyError" in rows[1]["error"] and rows[1]["id"] == "b"
    assert "\\udafb" in rows[1]["error"]
    assert Task.calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    fatal = [WorkItem(key="f", cost=1, payload={"id": "f", "boom": "fatal"})]
    try:
        asyncio.run(w._rows(items[:1] + fatal))
    except FatalEngineError:
        pass
    else:
        raise AssertionError("a fatal engine error must stop the sweep, not become a row")


def test_a_paper_whose_preparation_raises_is_its_own_error_row(smollm, tmp_path, monkeypatch):
    """One paper's data never ends the preparation of the others (the review job's Ray Data CPU stage)."""
    from longsweep.jobs.review import driver
    from longsweep.jobs.review.options import ReviewOptions
    from longsweep.papers.pairs import PaperInput
    real = driver.prepare_paper

    def flaky(pf, *a, **kw):
        if pf.paper_id == "bad":
            raise UnicodeEncodeError("utf-8", "\udafb", 0, 1, "surrogates not allowed")
        return real(pf, *a, **kw)
    monkeypatch.setattr(driver, "prepare_paper", flaky)
    papers = []
    for pid in ("good", "bad"):
        (tmp_path / f"{pid}.md").write_text(f"# Paper {pid}\n\nA short paper about rivers.\n")
        papers.append(PaperInput(pid, "v1", tmp_path / f"{pid}.md", None, None))
    out = driver.prepare_all(papers, smollm.with_window(1024), ReviewOptions(completion_reserve=64), use_ray=False)
    recs = {r["record"].paper_id: r["record"] for r in out}
    assert recs["good"].error is None and out[0]["messages"]
    assert recs["bad"].error_kind == "item_failed" and "UnicodeEncodeError" in recs["bad"].error


def test_a_review_answer_its_parser_raises_on_is_that_rows_reparse_error():
    from longsweep.reparse import reparse_row

    class Broken:
        def parse(self, text):
            raise IndexError("list index out of range")
    row = {"key": "p/v1/run1/m", "status": "ok", "raw_content": "**Summary:** odd", "error": None}
    new, reviewers = reparse_row(row, Broken())
    assert new["status"] == "error" and new["error_kind"] == "unparseable_review" and reviewers == []
    assert "IndexError" in new["error"] and new["raw_content"] == row["raw_content"]


def test_a_side_table_without_status_keeps_the_row_with_a_null():
    side = pa.schema([("key", pa.string()), ("text", pa.string())])
    assert to_table([{"key": "a", "text": "x\udafb"}, {"key": "b", "text": "ok"}], side).to_pylist() == [
        {"key": "a", "text": None}, {"key": "b", "text": "ok"}]
