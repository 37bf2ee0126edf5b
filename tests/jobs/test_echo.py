"""The toy `echo` job (a package and one registration line) runs through the whole runtime."""

import json

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration


def test_echo_job_counts_tokens_on_the_workers_like_the_driver(ray_local, smollm, smol_tok, tmp_path):
    from longsweep.cli import main
    from longsweep.tokens import count_messages
    prompts = ["Hello.", "Name three colours.", "word " * 300]
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps({"id": f"p{i}", "prompt": p}) for i, p in enumerate(prompts)))
    code = main(["echo", str(f), "--model", "smollm2-135m", "--out", str(tmp_path / "o"), "--actors", "2"])
    assert code == 0
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "o" / "echoes").to_pylist()}
    assert sorted(rows) == ["p0", "p1", "p2"]
    for i, p in enumerate(prompts):
        r = rows[f"p{i}"]
        assert r["status"] == "ok" and r["key"] == f"p{i}/smollm2-135m" and r["item_key"] == r["key"]
        assert r["prompt_tokens"] == count_messages(smol_tok, [{"role": "user", "content": p}])
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["job"] == "echo" and manifest["latest"]["counts"]["ok"] == 3


def test_a_job_registered_by_class_is_a_subcommand():
    from longsweep.cli import build_parser
    from longsweep.jobs import JOBS
    from longsweep.jobs.echo import EchoJob
    assert JOBS["echo"] is EchoJob
    args = build_parser().parse_args(["echo", "x.jsonl", "--model", "m"])
    assert args.cmd == "echo" and args.inputs == "x.jsonl"
