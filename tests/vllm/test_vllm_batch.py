"""OpenAI Batch JSONL round trip, checked against vLLM's own batch runner on the same input file: the file goes
through ``longsweep generate`` (a vLLM actor) and ``export --format openai-batch``, and through
``python -m vllm.entrypoints.openai.run_batch``; both outputs have one line per input line with the same
``custom_id``s, the same keys on every line, and on an ok line the same response keys and a body whose keys
(and its choice's, message's and usage's) are among vLLM's, with the same prompt token count.

Error lines differ by design, and the test pins how: ours follow OpenAI's Batch output (``"response": null``,
``"error": {"code", "message"}``); vLLM's carry ``"response": {"status_code": 400, ...}`` and its error as a
string or an error object (docs/REPORT.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from longsweep.cli import main

pytestmark = pytest.mark.vllm

WINDOW = 1024
LONG = "Describe the harbour town with its red lighthouse and its bakery in detail. " * 90  # ~1,400 tokens


def _line(cid: str, body: dict, url: str = "/v1/chat/completions") -> str:
    return json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": body})


def _input(path: Path, model: str) -> Path:
    chat = lambda text, **kw: {"model": model, "messages": [{"role": "user", "content": text}], **kw}  # noqa: E731
    path.write_text("\n".join([
        _line("fox", chat("Write one sentence about a fox.", max_tokens=16, temperature=0)),
        _line("sea", chat("Name three colours of the sea.", max_completion_tokens=12, temperature=0, seed=1,
                          stop=["\n\n"])),
        _line("long", chat(LONG, max_tokens=8)),  # longer than the window: an error line on both sides
        _line("embed", {"model": model, "input": "an embedding"}, url="/v1/embeddings"),  # the bad line
    ]) + "\n")
    return path


def _read(path: Path) -> dict[str, dict]:
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    by_id = {x["custom_id"]: x for x in lines}
    assert len(by_id) == len(lines), lines
    return by_id


def _run_batch(inp: Path, out: Path, model: str, log: Path) -> None:
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.run_batch", "-i", str(inp), "-o", str(out),
           "--model", model, "--max-model-len", str(WINDOW), "--dtype", "bfloat16", "--enforce-eager",
           "--seed", "0", "--kv-cache-memory-bytes", str(1 << 28)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=300)
    assert r.returncode == 0 and out.is_file(), log.read_text(errors="replace")[-3000:]


def test_batch_file_through_generate_and_export_matches_vllm_run_batch(ray_local, vllm_spec, tmp_path):
    model = str(vllm_spec.resolve_weights())
    inp = _input(tmp_path / "batch.jsonl", model)
    code = main(["generate", str(inp), "--model", vllm_spec.name, "--window", str(WINDOW), "--out",
                 str(tmp_path / "sweep")])
    assert code == 1  # two error rows: the long prompt and the embeddings line
    ours_file = tmp_path / "ours.jsonl"
    assert main(["export", str(tmp_path / "sweep"), "--format", "openai-batch", "--to", str(ours_file)]) == 0
    _run_batch(inp, tmp_path / "theirs.jsonl", model, tmp_path / "run_batch.log")
    ours, theirs = _read(ours_file), _read(tmp_path / "theirs.jsonl")

    assert sorted(ours) == sorted(theirs) == ["embed", "fox", "long", "sea"]
    for cid in ours:
        assert list(ours[cid]) == list(theirs[cid]) == ["id", "custom_id", "response", "error"], cid
    for cid in ("fox", "sea"):
        a, b = ours[cid], theirs[cid]
        assert a["error"] is None and b["error"] is None, (a, b)
        assert set(a["response"]) == set(b["response"]) == {"status_code", "request_id", "body"}
        assert a["response"]["status_code"] == b["response"]["status_code"] == 200
        body_a, body_b = a["response"]["body"], b["response"]["body"]
        assert set(body_a) <= set(body_b), set(body_a) - set(body_b)
        assert body_a["object"] == body_b["object"] == "chat.completion"
        ca, cb = body_a["choices"][0], body_b["choices"][0]
        assert set(ca) <= set(cb) and set(ca["message"]) <= set(cb["message"]), (ca, cb)
        assert ca["message"]["role"] == cb["message"]["role"] == "assistant"
        assert ca["message"]["content"] and cb["message"]["content"]
        assert {ca["finish_reason"], cb["finish_reason"]} <= {"stop", "length"}
        assert set(body_a["usage"]) <= set(body_b["usage"]), (body_a["usage"], body_b["usage"])
        assert body_a["usage"]["prompt_tokens"] == body_b["usage"]["prompt_tokens"]  # the same chat template
        assert body_a["usage"]["completion_tokens"] <= (16 if cid == "fox" else 12)
    for cid in ("long", "embed"):
        a, b = ours[cid], theirs[cid]
        assert a["response"] is None and set(a["error"]) == {"code", "message"} and a["error"]["message"], a
        assert b["response"]["status_code"] == 400 and b["response"].get("body") is None and b["error"], b
    assert ours["long"]["error"]["code"] == "prompt_too_long"
    assert "/v1/chat/completions" in ours["embed"]["error"]["message"]
