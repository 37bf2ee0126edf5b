"""Story sequences: our YAML format and the story seed's JSON format, one model.

YAML (ours)::

    sequences:
      - id: lighthouse
        system: You are a novelist.          # optional
        stop: ["THE END"]                     # optional stop strings
        prompts:
          - {name: opening, text: "Write the opening scene ..."}
          - {name: twist, text: "..."}

JSON (story seed)::

    {"lighthouse": [{"name": "opening", "text": "..."}, ...], ...}

A sequence with a bad prompt (empty, not a string) is reported with its reason
and skipped; the others load. A file with no sequences, or with an id used twice (all repeated ids named),
is refused whole (``ConfigError``, exit 2).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsweep.config import ConfigError, read_yaml
from longsweep.papers.layout import check_id


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str


@dataclass(frozen=True)
class Sequence:
    id: str
    prompts: tuple[Prompt, ...]
    system: str | None = None
    stop: tuple[str, ...] = ()


@dataclass
class Loaded:
    sequences: list[Sequence] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (sequence id, reason)


def _one(sid: str, raw_prompts: Any, system: Any, where: str, stop: Any = None) -> Sequence:
    if check_id(sid, "sequence id"):
        raise ValueError(check_id(sid, "sequence id"))
    if not isinstance(raw_prompts, list) or not raw_prompts:
        raise ValueError(f"{where}: prompts must be a non-empty list")
    prompts = []
    for i, p in enumerate(raw_prompts, 1):
        if isinstance(p, str):
            p = {"name": f"turn{i}", "text": p}
        if not isinstance(p, dict):
            raise ValueError(f"{where}: prompt {i} must be an object with name and text")
        text = p.get("text", p.get("prompt"))
        if not isinstance(text, str):
            raise ValueError(f"{where}: prompt {i} text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{where}: prompt {i} is empty")
        prompts.append(Prompt(str(p.get("name") or f"turn{i}"), text))
    if system is not None and not isinstance(system, str):
        raise ValueError(f"{where}: system must be a string")
    if isinstance(stop, str):
        stop = [stop]  # one stop sequence, not its characters
    if stop is not None and not (isinstance(stop, list) and all(isinstance(x, str) for x in stop)):
        raise ValueError(f"{where}: stop must be a list of strings")
    return Sequence(sid, tuple(prompts), system, tuple(stop or ()))


def load_sequences(path: str | Path) -> Loaded:
    """Load a YAML (ours) or JSON (story seed) file; a bad file raises ConfigError, a bad
    sequence is listed in ``errors``."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: cannot read JSON ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected an object mapping sequence name -> list of prompts")
        entries = [(str(k), v, None, None) for k, v in data.items()]
    else:
        data = read_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("sequences"), list):
            raise ConfigError(f"{path}: sequences: expected a list")
        entries = []
        for i, s in enumerate(data["sequences"]):
            if not isinstance(s, dict):
                raise ConfigError(f"{path}: sequences[{i}]: expected a mapping")
            entries.append((str(s.get("id", f"seq{i + 1}")), s.get("prompts"), s.get("system"), s.get("stop")))
    if not entries:
        raise ConfigError(f"{path}: no sequences")
    dups = sorted(k for k, n in Counter(sid for sid, *_ in entries).items() if n > 1)
    if dups:  # refused whole: an error row of one copy would count as the other's, valid, row
        raise ConfigError(f"{path}: sequence ids must be unique; repeated: {', '.join(repr(d) for d in dups)}")
    out = Loaded()
    for sid, prompts, system, stop in entries:
        try:
            out.sequences.append(_one(sid, prompts, system, f"{path.name}: {sid}", stop))
        except ValueError as e:
            out.errors.append((sid, str(e)))
    return out
