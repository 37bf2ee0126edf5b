"""Every error of longsweep in one place: exit codes, per-item error kinds, exception classes.

Three kinds of error, handled in three places:
  - bad input or config (``ConfigError``, ``InputError``): refused before Ray, exit 2;
  - fatal (``FatalError`` on the driver; ``EngineLoadError`` / ``EngineDeadError`` / ``FatalEngineError``
    in an actor): the sweep stops, exit 3, rows written so far kept;
  - per-item: a row with ``status="error"`` and an ``ErrorKind``; transient faults are retried first.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of the ``longsweep`` command (README: Exit codes)."""

    OK = 0  # every item ok
    ITEM_ERRORS = 1  # some items are error rows; the others are written
    BAD_INPUT = 2  # bad input or config, or the sweep folder is in use: nothing ran
    FATAL = 3  # the model workers cannot start or died beyond restarts; a server down; a full disk
    STOPPED = 4  # the error budget stopped the sweep early
    INTERRUPTED = 130  # SIGINT (Ctrl-C): stopped cleanly, manifest says interrupted
    TERMINATED = 143  # SIGTERM: stopped cleanly, manifest says interrupted


class ErrorKind(str, enum.Enum):
    """The ``error_kind`` column: why a row is an error. A string enum, so rows hold plain strings."""

    PROMPT_TOO_LONG = "prompt_too_long"  # the prompt cannot fit the window; never retried
    EMPTY_OUTPUT = "empty_output"  # the answer stayed empty (or too short) after retries
    REJECTED_OUTPUT = "rejected_output"  # the job's acceptance test failed after retries
    UNPARSEABLE_REVIEW = "unparseable_review"  # a review that its format's parser cannot read
    UNPARSEABLE_JUDGMENT = "unparseable_judgment"  # a judge answer without a valid score
    ENGINE_ERROR = "engine_error"  # the engine raised for this item after retries
    HTTP_ERROR = "http_error"  # a server answered this item with a 4xx other than context length
    SKIPPED_AFTER_FAILURE = "skipped_after_failure"  # a later story turn after a failed one
    BAD_INPUT = "bad_input"  # a bad field or entry in the input, named in `error`
    ITEM_FAILED = "item_failed"  # the job's own code raised on this item's data (its reason names the error)
    UNSTORABLE_VALUE = "unstorable_value"  # a value the table cannot hold (an int over int64, a lone surrogate)
    BUDGET = "budget"  # not even the minimum prompt fits the token budget
    CORRUPT_PDF = "corrupt_pdf"
    DAMAGED_PDF = "damaged_pdf"  # a PDF that PyMuPDF had to repair: text may be a fragment
    ENCRYPTED = "encrypted"
    NO_TEXT = "no_text"
    NOT_PDF = "not_pdf"
    EMPTY_FILE = "empty_file"
    BAD_UTF8 = "bad_utf8"

    def __str__(self) -> str:
        return self.value


class LongsweepError(Exception):
    """Base of the errors that end a command; ``exit_code`` is what the CLI returns."""

    exit_code: ExitCode = ExitCode.FATAL


class ConfigError(LongsweepError, ValueError):
    """A config file or value is invalid; the message names the file and field."""

    exit_code = ExitCode.BAD_INPUT


class InputError(LongsweepError, ValueError):
    """A bad input file or flag: nothing ran."""

    exit_code = ExitCode.BAD_INPUT


class SweepBusyError(LongsweepError):
    """Another run holds the sweep folder's lease."""

    exit_code = ExitCode.BAD_INPUT


class FatalError(LongsweepError, RuntimeError):
    """The sweep stopped: the engine cannot load, the actors died beyond their restarts, a server is down."""

    exit_code = ExitCode.FATAL


class InterruptedSweep(LongsweepError):
    """SIGINT / SIGTERM stopped the sweep cleanly."""

    def __init__(self, message: str, exit_code: ExitCode):
        super().__init__(message)
        self.exit_code = exit_code


class EngineLoadError(RuntimeError):
    """In an actor: the engine cannot start (missing weights, library, memory). Fatal for the sweep."""


class EngineDeadError(RuntimeError):
    """In an actor: the engine is dead (CUDA error, vLLM's EngineDeadError, a crashed server process), not
    merely failing one request. The actor process exits so that Ray restarts it and its batch runs again."""


class FatalEngineError(RuntimeError):
    """In an actor: no request can succeed (a wrong API key, a server down beyond the retry budget).
    The sweep stops with this message, exit 3."""


class BudgetError(ValueError):
    """The token budget cannot be met (not even the minimum prompt fits)."""


class PromptTooLongError(BudgetError):
    """A prompt plus its answer would exceed the window; refused before any engine sees it, never retried."""

    def __init__(self, needed: int, window: int, prompt_tokens: int, max_tokens: int, *,
                 refused_by: str | None = None, server_message: str | None = None):
        self.needed, self.window = needed, window
        self.prompt_tokens, self.max_tokens = prompt_tokens, max_tokens
        self.refused_by, self.server_message = refused_by, server_message
        if refused_by:  # the server refused it: its own words, and our counts beside them
            text = (f"the server {refused_by} refused the prompt as too long: {server_message!r} (our count: "
                    f"{prompt_tokens} prompt + {max_tokens} completion = {needed} tokens; window {window})")
        else:
            text = (f"prompt needs {needed} tokens ({prompt_tokens} prompt + {max_tokens} completion) "
                    f"but the context window is {window}")
        super().__init__(text)

    def __reduce__(self):  # crosses Ray (pickled) with its fields
        return (_rebuild_too_long, (type(self), self.needed, self.window, self.prompt_tokens, self.max_tokens,
                                    self.refused_by, self.server_message))


def _rebuild_too_long(cls, needed, window, prompt_tokens, max_tokens, refused_by, server_message):
    return cls(needed, window, prompt_tokens, max_tokens, refused_by=refused_by, server_message=server_message)


class IngestError(ValueError):
    """A paper that cannot be read; ``kind`` is a stable error kind for the row."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


class LayoutError(ValueError):
    """A papers folder that cannot be used at all."""


class GGUFError(ValueError):
    """A GGUF file whose metadata cannot be read."""
