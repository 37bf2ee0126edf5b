"""A function run in a fresh Python process: its memory is gone when it returns.

``in_child(fn, *args)`` starts ``python -m longsweep.runtime.child`` (never a fork of a process with Ray's
threads, and never multiprocessing's ``spawn``, which imports the caller's main script again: a user's script
without an ``if __name__ == "__main__"`` guard would run twice), sends it the function's name and the
arguments pickled on stdin, and reads back the result or the exception it raised, pickled on stdout. The child
is in the caller's process group, so Ctrl-C reaches both.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
from typing import Any, Callable

from longsweep.errors import FatalError


class ChildDied(FatalError):
    """The child ended without an answer (killed: out of memory, a signal): ``fatal:`` and exit 3 in the CLI."""


def in_child(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a fresh process; its result, or its exception raised here."""
    job = pickle.dumps((fn.__module__, fn.__qualname__, args, kwargs))
    r = subprocess.run([sys.executable, "-m", "longsweep.runtime.child"], input=job, capture_output=True)
    try:
        ok, value = pickle.loads(r.stdout)
    except Exception:  # noqa: BLE001 - no answer: the child was killed, or could not start
        tail = r.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
        raise ChildDied(f"{fn.__qualname__} ended without an answer ({tail[0]})") from None
    if not ok:
        raise value
    return value


def _serve() -> None:
    module, name, args, kwargs = pickle.loads(sys.stdin.buffer.read())
    fn = importlib.import_module(module)
    for part in name.split("."):
        fn = getattr(fn, part)
    try:
        out = (True, fn(*args, **kwargs))
    except Exception as e:  # noqa: BLE001 - handed back to the caller, which raises it
        out = (False, e)
    sys.stdout.buffer.write(pickle.dumps(out))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve()
