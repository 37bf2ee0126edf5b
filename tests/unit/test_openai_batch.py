"""OpenAI Batch JSONL: batch lines read as ``generate`` prompts (bad ones become that line's error), and a
generate sweep's rows exported as batch output lines with the keys ``vllm run-batch`` writes."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from longsweep.cli import main
from longsweep.jobs.generate.inputs import read_prompts


def _line(cid, body, **kw):
    return json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body, **kw})


def test_batch_lines_become_prompts_and_bad_ones_errors(tmp_path):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    lines = [
        _line("r1", {"model": "x", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 7,
                     "temperature": 0.2, "seed": 3, "stop": "END",
                     "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}}),
        _line("r2", {"messages": [{"role": "user", "content": [{"type": "text", "text": "A"},
                                                                {"type": "text", "text": "B"}]}]}),
        json.dumps({"id": "plain", "prompt": "ours, in the same file"}),
        _line("r3", {"messages": [{"role": "user", "content": "x"}], "tools": []}),
        _line("r4", {"messages": [{"role": "user", "content": "x"}]}, url="/v1/embeddings"),
        _line("r5", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
    ]
    f = tmp_path / "batch.jsonl"
    f.write_text("\n".join(lines) + "\n")
    got = read_prompts(f, max_tokens=None)
    by_id = {p["id"]: p for p in got.prompts}
    assert set(by_id) == {"r1", "r2", "plain"}
    assert by_id["r1"]["messages"] == [{"role": "user", "content": "Hi"}]
    assert by_id["r1"]["sampling"] == {"max_tokens": 7, "temperature": 0.2, "seed": 3, "stop": ["END"],
                                       "json_schema": schema}
    assert by_id["r2"]["messages"][0]["content"] == "AB"
    errors = dict(got.errors)
    assert "body: not supported by longsweep generate: tools" in errors["r3"]
    assert errors["r3"].startswith("batch.jsonl:4")
    assert "url: only /v1/chat/completions" in errors["r4"]
    assert "only text parts" in errors["r5"]


def test_export_openai_batch_lines(tmp_path, capsys):
    common = {"model": "m", "finished_at": "2026-12-01T10:00:00+00:00", "prompt_tokens": 5, "completion_tokens": 3}
    rows = [{"key": "a/m", "id": "a", "status": "ok", "text": "hello <b>", "finish_reason": "length",
             "error": None, "error_kind": None, **common},
            {"key": "b/m", "id": "b", "status": "error", "text": None, "finish_reason": None,
             "error": "prompt too long: 9000 tokens", "error_kind": "prompt_too_long", **common}]
    (tmp_path / "sweep" / "generations").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "sweep" / "generations" / "part-0.parquet")
    out = tmp_path / "out.jsonl"
    assert main(["export", str(tmp_path / "sweep"), "--openai-batch", str(out)]) == 0
    a, b = [json.loads(x) for x in out.read_text().splitlines()]
    assert list(a) == list(b) == ["id", "custom_id", "response", "error"]
    assert a["custom_id"] == "a" and a["error"] is None and a["response"]["status_code"] == 200
    body = a["response"]["body"]
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "hello <b>"}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert b["response"] is None
    assert b["error"] == {"code": "prompt_too_long", "message": "prompt too long: 9000 tokens"}
    capsys.readouterr()
    assert main(["export", str(tmp_path), "--openai-batch", str(out)]) == 2  # no generations/: one line
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_export_format_openai_batch_to_file_and_its_alias(tmp_path, capsys):
    """``--format openai-batch --to FILE`` (the spelling in the docs) writes what ``--openai-batch FILE`` writes;
    ``--format seed --to DIR`` is the default; a mix of the two spellings or no target is refused in one line."""
    rows = [{"key": "a/m", "id": "a", "status": "ok", "text": "hi", "finish_reason": "stop", "error": None,
             "error_kind": None, "model": "m", "finished_at": "2026-12-01T10:00:00+00:00",
             "prompt_tokens": 2, "completion_tokens": 1}]
    sweep = tmp_path / "sweep"
    (sweep / "generations").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), sweep / "generations" / "part-0.parquet")
    new, old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    assert main(["export", str(sweep), "--format", "openai-batch", "--to", str(new)]) == 0
    assert main(["export", str(sweep), "--openai-batch", str(old)]) == 0
    assert new.read_bytes() == old.read_bytes() and json.loads(new.read_text())["custom_id"] == "a"
    capsys.readouterr()
    for argv in (["--openai-batch", str(old), "--to", str(new)],
                 ["--openai-batch", str(old), "--format", "seed"],
                 ["--format", "openai-batch"], []):
        assert main(["export", str(sweep), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: export: ") and len(err.strip().splitlines()) == 1, (argv, err)
    # the default format is the seed's layout, which wants a reviews table: refused for a generate folder
    assert main(["export", str(sweep), "--to", str(tmp_path / "seed")]) == 2
    assert "not a review sweep" in capsys.readouterr().err
    assert main(["export", str(sweep), "--format", "seed", "--to", str(tmp_path / "seed")]) == 2
    assert "not a review sweep" in capsys.readouterr().err
