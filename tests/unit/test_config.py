import pytest

from longsweep.config import ConfigError, get_model, load_models


def test_registry_has_required_models():
    m = load_models()
    assert {"smollm2-135m", "gemma-3-1b", "sea-e", "smollm2-135m-vllm", "default"} <= set(m)
    assert m["smollm2-135m"].context_window == 8192 and m["smollm2-135m"].backend == "llama_cpp"
    assert m["sea-e"].context_window == 32768 and m["sea-e"].completion_reserve == 4096
    assert m["sea-e"].prompt_family == "sea" and m["sea-e"].backend == "vllm"
    g = m["gemma-3-1b"].llama_cpp
    assert (g.n_ctx, g.max_tokens, g.n_gpu_layers, g.n_batch, g.n_ubatch, g.flash_attn, g.offload_kqv) == \
        (32768, 16384, -1, 4096, 1024, True, True)
    assert m["default"].context_window == 128000


def _write(tmp_path, text):
    p = tmp_path / "models.yaml"
    p.write_text(text)
    return p


def test_error_names_file_and_field(tmp_path):
    p = _write(tmp_path, "models:\n  x:\n    backend: llama_cpp\n    source: {path: /x}\n    context_window: -5\n")
    with pytest.raises(ConfigError, match=r"models\.yaml: models\.x: context_window"):
        load_models(p)


def test_window_must_exceed_reserve_and_buffer(tmp_path):
    p = _write(tmp_path, "models:\n  x:\n    backend: llama_cpp\n    source: {path: /x}\n"
                         "    context_window: 1000\n    completion_reserve: 990\n    safety_buffer: 10\n")
    with pytest.raises(ConfigError, match="must be larger than completion_reserve"):
        load_models(p)


def test_unknown_backend_and_unknown_field(tmp_path):
    p = _write(tmp_path, "models:\n  x:\n    backend: onnx\n    source: {path: /x}\n    context_window: 1000\n")
    with pytest.raises(ConfigError, match=r"models\.x: backend"):
        load_models(p)
    p = _write(tmp_path, "models:\n  x:\n    backend: vllm\n    source: {path: /x}\n    context_window: 1000\n    windw: 3\n")
    with pytest.raises(ConfigError, match=r"models\.x: windw"):
        load_models(p)


def test_yaml_syntax_error_names_file(tmp_path):
    p = _write(tmp_path, "models: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_models(p)


def test_unknown_model_lists_known():
    with pytest.raises(ConfigError, match="unknown model 'nope'.*smollm2-135m"):
        get_model("nope")


def test_missing_gguf_path_is_a_clear_error(tmp_path):
    p = _write(tmp_path, "models:\n  x:\n    backend: llama_cpp\n    source: {path: /no/such.gguf}\n    context_window: 4096\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_models(p)["x"].resolve_weights()


def test_source_needs_exactly_one(tmp_path):
    p = _write(tmp_path, "models:\n  x:\n    backend: vllm\n    source: {path: /a, hub: b/c}\n    context_window: 4096\n")
    with pytest.raises(ConfigError, match="exactly one of path, hub, package"):
        load_models(p)


def test_a_gguf_whose_vocabulary_cannot_be_read_is_one_line_not_a_traceback(tmp_path):
    """A file that starts like a GGUF but is cut short: the loader's error becomes a ConfigError (exit 2)."""
    import pytest
    from longsweep.config import ModelSpec, get_model
    from longsweep.engines.registry import load_tokenizer
    from longsweep.errors import ConfigError
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    d = get_model("smollm2-135m").model_dump()
    d["source"] = {"path": str(bad)}
    spec = ModelSpec.model_validate(d)
    assert spec.check_weights() == str(bad)  # the magic is right: only loading finds the damage
    with pytest.raises(ConfigError, match="'smollm2-135m': its tokenizer could not be loaded"):
        load_tokenizer(spec)
