"""Will a model load? Weights + KV cache against the memory of the GPU (or host) that runs it.

Plain arithmetic over numbers read from files: no torch, no vLLM, no GPU. 1 GB = 10**9 bytes, as on a
GPU's spec sheet (an L4's 23,034 MiB is 24.15 GB, so ``--gpu-gb 24`` is on the safe side).

vLLM: the verdict is on ONE sequence of ``max_model_len``. That is what vLLM itself refuses at start-up
("to serve at least one request with the model's max seq len ... KV cache is needed, which is larger
than the available KV cache memory"); it allocates KV in pages as sequences grow, so ``max_num_seqs``
full-window sequences are never needed at once. What is left for KV after the weights is reported as
the number of full-window sequences (and tokens) that run together: the concurrency at full length.
Per GPU: weights / tensor_parallel_size + KV (KV heads split over the GPUs) + a fixed overhead
<= GPU memory x gpu_memory_utilization.

llama.cpp: the GGUF file (its size is the weights) + an f16 KV cache for ``n_ctx`` + a fixed overhead
per instance; ``num_gpus: 0.25`` puts four instances on one GPU, each with all of that.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longsweep.config import ModelSpec, resolve_path

GB = 10**9
VLLM_OVERHEAD_GB = 2.0  # per GPU: CUDA context, the activation peak of vLLM's profiling run, CUDA graphs
LLAMA_OVERHEAD_GB = 0.5  # per instance: its process's CUDA context and llama.cpp's compute buffers
DTYPE_BYTES = {"float16": 2, "half": 2, "bfloat16": 2, "float32": 4, "float": 4, "float64": 8}
_GPU_RESOURCE = re.compile(r"gpu_(\d+(?:\.\d+)?)gb")  # a custom resource that names its GPU's memory

_LLAMA_31_8B = {"num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
                "head_dim": 128, "intermediate_size": 14336, "vocab_size": 128256, "tie_word_embeddings": False,
                "torch_dtype": "bfloat16"}
_MISTRAL_7B = {**_LLAMA_31_8B, "vocab_size": 32000}
# Known architectures by hub id, for a hub model whose config.json is not on this machine.
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-3.1-8B-Instruct": _LLAMA_31_8B,
    "meta-llama/Llama-3.1-8B": _LLAMA_31_8B,
    "meta-llama/Meta-Llama-3.1-8B-Instruct": _LLAMA_31_8B,
    "mistralai/Mistral-7B-Instruct-v0.2": _MISTRAL_7B,
    "mistralai/Mistral-7B-v0.1": _MISTRAL_7B,
    "ECNU-SEA/SEA-E": _MISTRAL_7B,  # a Mistral-7B-Instruct-v0.2 fine-tune
}


@dataclass(frozen=True)
class MemCheck:
    """Every number of one check. Bytes are per GPU (or per host) unless named ``total``."""

    name: str
    backend: str
    device: str  # "GPU" or "CPU" (host memory)
    numbers_from: str  # where the architecture numbers come from
    layers: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    params: int = 0
    dtype: str = ""
    weights_total: int = 0  # all weights of one instance
    kv_per_token_total: int = 0  # K and V of all layers for one token
    window: int = 0  # max_model_len (vLLM) or n_ctx (llama.cpp)
    max_num_seqs: int | None = None
    gpus_per_instance: float = 1  # tensor_parallel_size, or num_gpus >= 1
    instances_per_gpu: int = 1  # fractional num_gpus: several actors share one GPU
    device_bytes: int | None = None  # memory of one GPU, or of the host
    device_from: str = ""
    utilization: float = 1.0
    weights: int = 0  # per GPU, one instance
    kv_seq: int = 0  # KV of one full-window sequence, per GPU, one instance
    overhead: int = 0  # per GPU, one instance
    need: int = 0  # per GPU: instances x (weights + kv_seq + overhead)
    budget: int = 0  # device_bytes x utilization
    kv_room: int = 0  # per GPU, one instance: what is left for KV (vLLM: kv_cache_memory_bytes when set)
    full_window_seqs: float = 0.0  # kv_room / kv_seq
    max_window: int = 0  # the longest window whose one sequence fits kv_room
    ok: bool = False
    verdict: str = "unknown"  # "fits", "does not fit", "unknown"
    message: str = ""


def gb(n: float) -> str:
    return f"{n / GB:.2f} GB"


def host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def device_memory(spec: ModelSpec, gpu_gb: float | None) -> tuple[int | None, str]:
    """GPU memory for the check: ``--gpu-gb``, else a custom resource ``gpu_<N>gb`` the model asks for."""
    if gpu_gb:
        return int(gpu_gb * GB), f"--gpu-gb {gpu_gb:g}"
    for key in spec.resources.custom:
        if m := _GPU_RESOURCE.fullmatch(key):
            return int(float(m.group(1)) * GB), f"resource {key}"
    return None, ""


# ---------------------------------------------------------------------------------------------------- vLLM

def params_from_config(cfg: dict[str, Any]) -> int | None:
    """Parameters of a Llama-style decoder from its config: embeddings, attention, gated MLP, norms."""
    try:
        h, layers, inter, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
        heads = cfg["num_attention_heads"]
    except KeyError:
        return None
    kv, hd = cfg.get("num_key_value_heads") or heads, cfg.get("head_dim") or h // heads
    attn = h * heads * hd + 2 * h * kv * hd + heads * hd * h
    per_layer = attn + 3 * h * inter + 2 * h
    head = 0 if cfg.get("tie_word_embeddings") else vocab * h
    return vocab * h + layers * per_layer + h + head


def safetensors_params(files: list[Path]) -> int:
    """Exact parameter count from the safetensors headers (8-byte length, then JSON); tensors are not read."""
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


def _hub_cached(hub: str, filename: str) -> Path | None:
    """A file of a hub model from the local Hugging Face cache; never the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(hub, filename)
    return Path(found) if isinstance(found, str) else None


def _config_and_params(spec: ModelSpec) -> tuple[dict[str, Any] | None, int | None, str]:
    """The config.json (text part of a multimodal one), the parameter count and where both come from."""
    src, folder, where = spec.source, None, ""
    cfg_file = index = None
    if src.path:
        folder = resolve_path(src.path, spec.registry_dir)
        cfg_file, index, where = folder / "config.json", folder / "model.safetensors.index.json", f"config.json in {folder}"
    elif src.hub:
        cfg_file, index = _hub_cached(src.hub, "config.json"), _hub_cached(src.hub, "model.safetensors.index.json")
        where = f"config.json of {src.hub} in the Hugging Face cache"
    if cfg_file is None or not cfg_file.is_file():
        if src.hub in KNOWN_ARCHITECTURES:
            cfg = KNOWN_ARCHITECTURES[src.hub]
            return cfg, params_from_config(cfg), f"longsweep's built-in table ({src.hub}; no config.json on this machine)"
        return None, None, f"no config.json for {src.path or src.hub} on this machine and not in the built-in table"
    raw = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg = {**raw, **(raw.get("text_config") or {})}
    cfg.setdefault("torch_dtype", raw.get("torch_dtype") or raw.get("dtype"))
    shards = sorted(folder.glob("*.safetensors")) if folder else []
    if shards:
        return cfg, safetensors_params(shards), f"{where}; parameters from the safetensors headers"
    if index is not None and index.is_file():
        total = json.loads(index.read_text())["metadata"]["total_size"]
        per = DTYPE_BYTES.get(str(cfg.get("torch_dtype")), 2)
        return cfg, total // per, f"{where}; parameters from model.safetensors.index.json"
    return cfg, params_from_config(cfg), f"{where}; parameters from the architecture"


def _run_dtype(spec: ModelSpec, cfg: dict[str, Any]) -> str:
    """vLLM's dtype: the setting, else the checkpoint's, with float32 checkpoints run in bfloat16."""
    if spec.vllm.dtype != "auto":
        return spec.vllm.dtype
    stored = str(cfg.get("torch_dtype") or "bfloat16")
    return "bfloat16" if DTYPE_BYTES.get(stored, 2) > 2 else stored


def check_vllm(spec: ModelSpec, gpu_gb: float | None = None) -> MemCheck:
    cfg, params, source = _config_and_params(spec)
    base = dict(name=spec.name, backend="vllm", device="GPU" if spec.resources.num_gpus > 0 else "CPU",
                numbers_from=source, window=spec.n_ctx, max_num_seqs=spec.vllm.max_num_seqs)
    if cfg is None or not params or "num_hidden_layers" not in cfg:
        return MemCheck(**base, message=f"{spec.name}: cannot estimate: {source}")
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    dtype = _run_dtype(spec, cfg)
    nbytes = DTYPE_BYTES.get(dtype, 2)
    layers = cfg["num_hidden_layers"]
    tp = spec.vllm.tensor_parallel_size
    kv_tok_total = 2 * layers * kv_heads * head_dim * nbytes
    kv_tok = 2 * layers * max(1, kv_heads // tp) * head_dim * nbytes  # KV heads split over (or copied to) the GPUs
    base.update(layers=layers, kv_heads=kv_heads, head_dim=head_dim, params=params, dtype=dtype,
                weights_total=params * nbytes, kv_per_token_total=kv_tok_total, gpus_per_instance=tp)
    if base["device"] == "GPU":
        mem, mem_from = device_memory(spec, gpu_gb)
        util = spec.vllm.gpu_memory_utilization
    else:
        mem, mem_from = (int(spec.resources.memory_gb * GB), "resources.memory_gb") if spec.resources.memory_gb \
            else (host_memory_bytes(), "this machine's memory")
        util = 1.0
    if mem is None:
        return MemCheck(**base, message=f"{spec.name}: GPU memory unknown: pass --gpu-gb N (or give the model a "
                                        f"custom resource gpu_<N>gb)")
    weights, overhead = params * nbytes // tp, int(VLLM_OVERHEAD_GB * GB)
    kv_seq, budget = kv_tok * spec.n_ctx, int(mem * util)
    fixed_kv = spec.vllm.kv_cache_memory_bytes
    kv_room = fixed_kv if fixed_kv else max(0, budget - weights - overhead)
    need = weights + overhead + (fixed_kv or kv_seq)
    ok = kv_room >= kv_seq and need <= budget and not (base["device"] == "CPU" and not fixed_kv)
    mc = MemCheck(**base, device_bytes=mem, device_from=mem_from, utilization=util, weights=weights, kv_seq=kv_seq,
                  overhead=overhead, need=need, budget=budget, kv_room=kv_room, full_window_seqs=kv_room / kv_seq,
                  max_window=kv_room // kv_tok, ok=ok, verdict="fits" if ok else "does not fit")
    return _with_message(mc, _vllm_fixes(mc, spec) if not ok else "")


def _vllm_fixes(mc: MemCheck, spec: ModelSpec) -> str:
    if mc.device == "CPU" and not spec.vllm.kv_cache_memory_bytes:
        return f"set vllm.kv_cache_memory_bytes >= {mc.kv_seq} (vLLM on CPU does not start without a KV size)"
    fixes = []
    if mc.max_window > spec.completion_reserve + spec.safety_buffer:
        fixes.append(f"a window of at most {mc.max_window} tokens (--window, or a preset with a smaller max_model_len)")
    util = mc.utilization
    for tp in (2, 4, 8):
        if tp <= mc.gpus_per_instance:
            continue
        kv_tok = 2 * mc.layers * max(1, mc.kv_heads // tp) * mc.head_dim * DTYPE_BYTES.get(mc.dtype, 2)
        if mc.weights_total // tp + mc.overhead + kv_tok * mc.window <= mc.budget:
            fixes.append(f"tensor_parallel_size {tp} (and resources.num_gpus {tp})")
            break
    per_gpu = mc.weights_total // mc.gpus_per_instance + mc.overhead + mc.kv_seq
    fixes.append(f"a bigger GPU: at least {per_gpu / util / GB:.1f} GB at gpu_memory_utilization {util:g}")
    return "fix: " + "; or ".join(fixes)


# ----------------------------------------------------------------------------------------------- llama.cpp

def gguf_architecture(path: str) -> dict[str, int]:
    """Layers, KV heads (a per-layer list is summed) and K/V widths from a GGUF's metadata."""
    from longsweep.engines.gguf_meta import read_metadata
    meta = read_metadata(path)
    arch = meta.get("general.architecture", "llama")
    layers = int(meta[f"{arch}.block_count"])
    heads = meta[f"{arch}.attention.head_count"]
    heads = max(heads) if isinstance(heads, list) else int(heads)
    kv = meta.get(f"{arch}.attention.head_count_kv", heads)
    kv_sum = sum(kv) if isinstance(kv, list) else int(kv) * layers
    emb = int(meta[f"{arch}.embedding_length"])
    k_len = int(meta.get(f"{arch}.attention.key_length", emb // heads))
    v_len = int(meta.get(f"{arch}.attention.value_length", emb // heads))
    return {"layers": layers, "kv_heads": max(kv) if isinstance(kv, list) else int(kv), "kv_head_sum": kv_sum,
            "k_len": k_len, "v_len": v_len}


def check_llama_cpp(spec: ModelSpec, gpu_gb: float | None = None) -> MemCheck:
    lc, res = spec.llama_cpp, spec.resources
    on_gpu = res.num_gpus > 0 and lc.n_gpu_layers != 0
    base = dict(name=spec.name, backend="llama_cpp", device="GPU" if on_gpu else "CPU", window=spec.n_ctx)
    try:
        path = spec.resolve_weights()
        a = gguf_architecture(path)
    except Exception as e:  # noqa: BLE001 - a missing or unreadable GGUF is a verdict, not a crash
        return MemCheck(**base, numbers_from="the GGUF file", message=f"{spec.name}: cannot read the GGUF: {e}")
    kv_tok = a["kv_head_sum"] * (a["k_len"] + a["v_len"]) * 2  # llama.cpp's default f16 K and V
    file_bytes = os.path.getsize(path)
    base.update(numbers_from=f"the GGUF metadata of {Path(path).name}", layers=a["layers"], kv_heads=a["kv_heads"],
                head_dim=a["k_len"], dtype="gguf", weights_total=file_bytes, kv_per_token_total=kv_tok)
    frac = 1.0
    if on_gpu:
        mem, mem_from = device_memory(spec, gpu_gb)
        if 0 < lc.n_gpu_layers < a["layers"]:
            frac = lc.n_gpu_layers / a["layers"]
        per_inst_gpus = max(1.0, res.num_gpus)
        inst = 1 if res.num_gpus >= 1 else math.floor(1 / res.num_gpus + 1e-9)
    else:
        mem, mem_from = (int(res.memory_gb * GB), "resources.memory_gb") if res.memory_gb \
            else (host_memory_bytes(), "this machine's memory")
        per_inst_gpus, inst = 1.0, 1
    base.update(gpus_per_instance=per_inst_gpus, instances_per_gpu=inst)
    if mem is None:
        return MemCheck(**base, message=f"{spec.name}: GPU memory unknown: pass --gpu-gb N")
    kv_frac = frac if (lc.offload_kqv or not on_gpu) else 0.0
    weights = int(file_bytes * frac / per_inst_gpus)
    kv_tok_dev = kv_tok * kv_frac / per_inst_gpus
    kv_seq, overhead = int(kv_tok_dev * spec.n_ctx), int(LLAMA_OVERHEAD_GB * GB)
    need = inst * (weights + kv_seq + overhead)
    kv_room = max(0, mem // inst - weights - overhead)
    ok = need <= mem
    mc = MemCheck(**base, device_bytes=mem, device_from=mem_from, weights=weights, kv_seq=kv_seq, overhead=overhead,
                  need=need, budget=mem, kv_room=kv_room, full_window_seqs=kv_room / kv_seq if kv_seq else math.inf,
                  max_window=int(kv_room // kv_tok_dev) if kv_tok_dev else spec.n_ctx, ok=ok,
                  verdict="fits" if ok else "does not fit")
    return _with_message(mc, "" if ok else _llama_fixes(mc, spec))


def _llama_fixes(mc: MemCheck, spec: ModelSpec) -> str:
    fixes = []
    if mc.max_window > spec.completion_reserve + spec.safety_buffer:
        fixes.append(f"n_ctx of at most {mc.max_window} (--window)")
    one = mc.weights + mc.kv_seq + mc.overhead
    if mc.instances_per_gpu > 1 and one <= mc.budget:
        k = max(1, mc.budget // one)
        fixes.append(f"{k} instance(s) per GPU (resources.num_gpus {1 / k:g})")
    fixes.append(f"a device with at least {mc.need / GB:.1f} GB")
    return "fix: " + "; or ".join(fixes)


# ------------------------------------------------------------------------------------------------- output

def _with_message(mc: MemCheck, fix: str) -> MemCheck:
    from dataclasses import replace
    return replace(mc, message=format_check(mc) + (f"\n  {fix}" if fix else ""))


def format_check(mc: MemCheck) -> str:
    """The verdict and the numbers behind it, one line each."""
    if mc.device_bytes is None:
        return mc.message
    where = (f"{mc.instances_per_gpu} x {mc.name} on one" if mc.instances_per_gpu > 1 else
             f"{mc.gpus_per_instance:g} x" if mc.device == "GPU" else "host")
    dev = f"{gb(mc.device_bytes)} {'GPU' if mc.device == 'GPU' else 'memory'} ({mc.device_from})"
    arch = (f"{mc.layers} layers, {mc.kv_heads} KV heads, head_dim {mc.head_dim}"
            + (f", {mc.params / 1e9:.2f}B parameters, {mc.dtype}" if mc.params else ""))
    seqs = f"{mc.full_window_seqs:.2f}" if math.isfinite(mc.full_window_seqs) else "any number of"
    per = "per GPU" if mc.device == "GPU" else "in memory"
    lines = [
        f"{mc.name} ({mc.backend}): {mc.verdict.upper()} on {where} {dev}",
        f"  numbers from {mc.numbers_from}: {arch}",
        f"  weights {gb(mc.weights)} + KV of one {mc.window}-token sequence {gb(mc.kv_seq)} "
        f"({mc.kv_per_token_total} bytes/token in all) + overhead {gb(mc.overhead)}"
        + (f", x {mc.instances_per_gpu} instances" if mc.instances_per_gpu > 1 else "")
        + f" = {gb(mc.need)} {per}",
        f"  budget {gb(mc.device_bytes)} x {mc.utilization:g} = {gb(mc.budget)} {per}; KV room {gb(mc.kv_room)} "
        f"holds {seqs} full-window sequences ({mc.max_window} tokens)"
        + (f", max_num_seqs {mc.max_num_seqs}" if mc.max_num_seqs else ""),
    ]
    return "\n".join(lines)


def check_model(spec: ModelSpec, gpu_gb: float | None = None) -> MemCheck:
    """The memory check of a vLLM or llama.cpp model (``openai`` models run elsewhere: see models_cmd)."""
    if spec.backend == "vllm":
        return check_vllm(spec, gpu_gb)
    if spec.backend == "llama_cpp":
        return check_llama_cpp(spec, gpu_gb)
    raise ValueError(f"{spec.name}: backend {spec.backend} has no memory check (it runs on a server)")
