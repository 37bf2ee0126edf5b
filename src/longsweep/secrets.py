"""Secrets (an endpoint's API key): how they reach the actors, and how server text is kept free of them.

Ray writes every actor's ``runtime_env`` (``env_vars`` included) in plain text to its session logs, so a key
never travels there. The driver reads it from the environment and hands it to the actors' constructors as a
``Secret``: its ``repr``/``str`` are ``***``, and its pickled form (Ray's object store, spilled objects) holds
the key masked, never as plain text. Any text a server sends back (an error body that echoes the key, as
some do on 401/500) passes through ``redact`` before it is stored, logged or printed.
"""

from __future__ import annotations

import os
import secrets as _random

MASK = "***"


class Secret:
    """A value whose ``repr``, ``str`` and pickle never show it; ``reveal()`` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # crosses Ray masked: no plain copy in the object store or a spilled object
        raw = self._value.encode("utf-8")
        pad = _random.token_bytes(len(raw))
        return (_unmask, (pad, bytes(a ^ b for a, b in zip(raw, pad))))


def _unmask(pad: bytes, masked: bytes) -> Secret:
    return Secret(bytes(a ^ b for a, b in zip(masked, pad)).decode("utf-8"))


def from_env(name: str | None) -> Secret | None:
    """The secret in environment variable ``name``, or None when unnamed, unset or empty."""
    value = os.environ.get(name) if name else None
    return Secret(value) if value else None


def redact(text: str, *secrets: Secret | str | None) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    for s in secrets:
        value = s.reveal() if isinstance(s, Secret) else s
        if value and isinstance(text, str) and value in text:
            text = text.replace(value, MASK)
    return text
