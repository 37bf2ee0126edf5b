"""Prompts of the ``generate`` job: JSONL, one ``{"id", "messages"|"prompt", sampling...}`` per line, or an
OpenAI Batch line ``{"custom_id", "method", "url", "body"}`` (``openai_batch.py``; told apart per line).

Every problem of one line is that line's own: a line that is not JSON, not an object, has no prompt, an
empty prompt, a message without a role, or a bad sampling field (``"temperature": "0.7x"``) becomes a
``bad_input`` error row whose ``error`` names the line and the field; the other lines run. What concerns the
file as a whole is refused before Ray (``InputError``, exit 2): it cannot be read, it has no lines, or ids
repeat (all repeated ids named in one message: a row of one must never stand for another).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError, field_validator

from longsweep.errors import InputError
from longsweep.jobs.generate.openai_batch import batch_to_prompt, is_batch_line

SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "seed", "stop", "json_schema", "repetition_penalty")
ROLES = ("system", "user", "assistant")


def _number(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("expected a number")
    return v


Number = Annotated[float, BeforeValidator(_number)]
INT64 = {"ge": -(2**63), "le": 2**63 - 1}  # what the table's int64 columns hold: a larger int is the line's error


class Sampling(BaseModel):
    """A line's sampling fields, checked on the driver: strict types, so ``"0.7x"`` and ``"0.7"`` are refused
    rather than failing (or silently parsed) inside a worker."""

    model_config = ConfigDict(extra="forbid")
    max_tokens: StrictInt | None = Field(None, gt=0, le=INT64["le"])
    temperature: Number | None = Field(None, ge=0)
    top_p: Number | None = Field(None, gt=0, le=1)
    seed: StrictInt | None = Field(None, **INT64)
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    repetition_penalty: Number | None = Field(None, gt=0)

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v  # "THE END" is one stop sequence, not eight characters


@dataclass
class PromptFile:
    prompts: list[dict[str, Any]] = field(default_factory=list)  # {"id", "messages", "sampling"}
    errors: list[tuple[str, str]] = field(default_factory=list)  # (id, reason naming the line and field)


def _messages(obj: dict[str, Any]) -> list[dict[str, str]]:
    """The line's chat messages, or ValueError naming the field."""
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise ValueError("messages: expected a non-empty list of {role, content}")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                raise ValueError(f"messages[{i}]: expected an object with role and content")
            if m.get("role") not in ROLES:
                raise ValueError(f"messages[{i}].role: expected one of {', '.join(ROLES)}, got {m.get('role')!r}")
            if not isinstance(m.get("content"), str):
                raise ValueError(f"messages[{i}].content: expected a string")
            extra = set(m) - {"role", "content", "name"}
            if extra:
                raise ValueError(f"messages[{i}]: unknown field(s) {', '.join(sorted(extra))}")
        if not any(m["content"].strip() for m in msgs if m["role"] == "user"):
            raise ValueError("messages: no user message with text (an empty prompt)")
        return [{"role": m["role"], "content": m["content"]} for m in msgs]
    if "prompt" not in obj:
        raise ValueError("needs `messages` (a list of {role, content}) or a string `prompt`")
    if not isinstance(obj["prompt"], str):
        raise ValueError(f"prompt: expected a string, got {type(obj['prompt']).__name__}")
    if not obj["prompt"].strip():
        raise ValueError("prompt: empty")
    return [{"role": "user", "content": obj["prompt"]}]


def _sampling(obj: dict[str, Any], max_tokens: int | None) -> dict[str, Any]:
    try:
        s = Sampling.model_validate({k: obj[k] for k in SAMPLING_KEYS if k in obj})
    except ValidationError as e:
        err = e.errors()[0]
        where = str(err["loc"][0]) if err["loc"] else "sampling"
        msg = err["msg"].removeprefix("Value error, ")
        raise ValueError(f"{where}: {msg} (got {err.get('input')!r})") from None
    out = s.model_dump(exclude_none=True)
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    return out


def _line_id(obj: Any, n: int) -> tuple[str, str | None]:
    """The line's id (its line number when it has none) and a problem with it, if any."""
    if not isinstance(obj, dict) or "id" not in obj:
        return str(n), None
    pid = obj["id"]
    if isinstance(pid, bool) or not isinstance(pid, (str, int)):
        return str(n), f"id: expected a string or an integer, got {type(pid).__name__}"
    pid = str(pid)
    if not pid.strip() or "/" in pid or "\x00" in pid:
        return str(n), f"id: {pid!r} is empty or holds '/' or NUL"
    return pid, None


def line_id(line: str | dict[str, Any], n: int) -> str:
    """The id of a line as ``parse_line`` decides it, without checking the rest of the line (a scan of ids)."""
    if isinstance(line, dict):
        obj: Any = {k: v for k, v in line.items() if v is not None}
    else:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            return str(n)
    if is_batch_line(obj):  # batch_to_prompt names the prompt by custom_id, whether or not the line is good
        obj = {"id": obj["custom_id"]}
    return _line_id(obj, n)[0]


def parse_line(line: str | dict[str, Any], n: int, name: str, *, max_tokens: int | None
               ) -> tuple[str, dict[str, Any] | None, str | None]:
    """One line (its text, or a Parquet row as a dict) decided on its own: ``(id, prompt, None)`` or
    ``(id, None, reason naming the line and the field)``; the id is the line number when the line has none."""
    if isinstance(line, dict):
        obj, bad = {k: v for k, v in line.items() if v is not None}, None
    else:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            obj, bad = None, f"not JSON ({e.msg} at column {e.colno})"
        else:
            bad = None if isinstance(obj, dict) else f"expected a JSON object, got a {type(obj).__name__}"
    batch_bad = None
    if bad is None and is_batch_line(obj):  # an OpenAI Batch line (openai_batch.py)
        try:
            obj = batch_to_prompt(obj)
        except ValueError as e:
            batch_bad, obj = str(e), {"id": obj["custom_id"]}
    pid, id_bad = _line_id(obj, n)
    bad = bad or id_bad or batch_bad
    if bad is None:
        try:
            return pid, {"id": pid, "messages": _messages(obj), "sampling": _sampling(obj, max_tokens)}, None
        except ValueError as e:
            bad = str(e)
    return pid, None, f"{name}:{n}: {bad}"


def repeated_ids_error(path: Path, dups: list[str]) -> InputError:
    """Every repeated id named in one message (the first 20 spelled out)."""
    return InputError(f"{path}: ids must be unique; repeated: {', '.join(repr(d) for d in dups[:20])}"
                      + (f" and {len(dups) - 20} more" if len(dups) > 20 else ""))


def read_prompts(path: Path, *, max_tokens: int | None) -> PromptFile:
    """Every line decided on its own: a prompt, or an error naming the line and the field."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    out, ids = PromptFile(), []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        pid, prompt, bad = parse_line(line, n, Path(path).name, max_tokens=max_tokens)
        ids.append(pid)
        if prompt is not None:
            out.prompts.append(prompt)
        else:
            out.errors.append((pid, bad))
    if not ids:
        raise InputError(f"{path}: no prompts (every line is empty)")
    dups = sorted(k for k, c in Counter(ids).items() if c > 1)
    if dups:
        raise repeated_ids_error(path, dups)
    return out


def load_prompts(path: Path, *, max_tokens: int | None) -> list[dict[str, Any]]:
    """The valid prompts of a file; any bad line refuses the file (for jobs without per-item error rows)."""
    f = read_prompts(path, max_tokens=max_tokens)
    if f.errors:
        raise InputError("; ".join(reason for _, reason in f.errors[:5]))
    return f.prompts
