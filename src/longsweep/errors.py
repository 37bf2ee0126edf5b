"""Errors that end a command, shared by the CLI and the library."""

from __future__ import annotations


class InputError(ValueError):
    """A bad input file: nothing ran."""


class FatalError(RuntimeError):
    """The sweep stopped: the engine cannot load, or the actors died beyond their restarts."""
