"""SIGINT and SIGTERM stop a sweep cleanly: one line, a manifest that says ``interrupted``, exit 130 / 143.

``stop_on_signals()`` installs handlers that record the signal and raise ``SweepInterrupt`` (a
``KeyboardInterrupt``) in the main thread and in every thread registered with ``interruptible()`` (a
model's sweep running beside others). Ray Data's execution ends on it as on Ctrl-C: the actor pool is shut
down, rows already written stay. ``ray.init`` installs its own SIGTERM handler (``sys.exit(15)``, which
leaves Ray's threads to dump a C++ stack), so ``install()`` runs again after Ray is connected.

A second signal while the first is being handled ends the process at once (``os._exit``) with the same code.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from typing import Iterator

from longsweep.errors import ExitCode

CODES = {signal.SIGINT: ExitCode.INTERRUPTED, signal.SIGTERM: ExitCode.TERMINATED}


class SweepInterrupt(KeyboardInterrupt):
    """Raised where a sweep runs when SIGINT / SIGTERM arrived; ``received()`` says which."""


_state: dict[str, object] = {"signum": None, "handling": False, "pending": None}
_threads: dict[int, int] = {}  # thread ident -> how many interruptible() blocks it is inside
_lock = threading.Lock()


def received() -> int | None:
    """The signal that stopped this process's sweep, or None."""
    return _state["signum"]  # type: ignore[return-value]


def exit_code(signum: int | None = None) -> ExitCode:
    return CODES.get(signal.Signals(signum or received() or signal.SIGINT), ExitCode.INTERRUPTED)


def name(signum: int | None = None) -> str:
    return signal.Signals(signum or received() or signal.SIGINT).name


def raise_in_thread(ident: int, exc: type[BaseException] = SweepInterrupt) -> bool:
    """Raise ``exc`` in another Python thread at its next bytecode (what ``_thread.interrupt_main`` does
    for the main thread). False when the thread is gone."""
    # the main thread through its SIGINT handler, where Python has one: a process that inherited SIGINT
    # ignored (a job that a non-interactive shell started with `&`) has none, and interrupt_main would do nothing
    if ident == threading.main_thread().ident and callable(signal.getsignal(signal.SIGINT)):
        import _thread
        _state["pending"] = exc  # interrupt_main runs the SIGINT handler: ours raises `exc`, not a Ctrl-C
        _thread.interrupt_main()
        return True
    n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))
    return n == 1


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Mark the current thread as one that a signal must interrupt too (a model's sweep in a worker thread)."""
    ident = threading.get_ident()
    with _lock:
        _threads[ident] = _threads.get(ident, 0) + 1
    try:
        yield
    finally:
        with _lock:  # a nested block's end leaves the thread registered for the outer one
            if _threads.get(ident, 0) > 1:
                _threads[ident] -= 1
            else:
                _threads.pop(ident, None)


def _handler(signum, frame) -> None:  # noqa: ARG001 - the signal module's signature
    pending, _state["pending"] = _state["pending"], None
    if pending is not None and signum == signal.SIGINT:  # raise_in_thread, not a user's Ctrl-C
        raise pending()  # type: ignore[operator]
    if _state["handling"] or _state["signum"] is not None:
        # a second signal while the first one is being handled: leave now, with the same code
        sys.stderr.write(f"\n[longsweep] {signal.Signals(signum).name} again: exiting now\n")
        sys.stderr.flush()
        os._exit(int(exit_code(_state["signum"] or signum)))  # type: ignore[arg-type]
    _state["signum"] = signum
    sys.stderr.write(f"\n[longsweep] {signal.Signals(signum).name}: stopping the sweep cleanly "
                     f"(send it again to exit at once)\n")
    sys.stderr.flush()
    with _lock:
        others = [t for t in _threads if t != threading.main_thread().ident]
    for ident in others:
        raise_in_thread(ident)
    raise SweepInterrupt(signal.Signals(signum).name)


def install() -> None:
    """(Re)install the handlers; only the main thread can."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in CODES:
        signal.signal(sig, _handler)


def handling() -> None:
    """The first signal is being handled: a second one exits at once."""
    _state["handling"] = True


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT / SIGTERM raise ``SweepInterrupt`` inside the block; the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.getsignal(sig) for sig in CODES}
    _state.update(signum=None, handling=False, pending=None)
    install()
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
