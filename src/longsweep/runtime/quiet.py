"""A quiet terminal: a sweep prints longsweep's own lines; Ray's go to Ray's session log files.

Without ``--verbose`` the driver's Ray loggers print nothing on the console: the ``ray`` logger writes to
``<session>/logs/ray-data/ray-driver.log`` instead (what it logs before the session exists, such as the
token-authentication notice during ``ray.init``, is dropped),
and Ray Data's console handler is turned off (its ``ray-data.log`` keeps every record: the progress blocks
it logs every 10 s on a non-terminal, "the cluster does not have any available CPUs", the execution
plan). Ray Data's own progress bars are off (on a terminal they would draw over our progress line).
The driver's own core worker (C++) writes its ERROR lines to file descriptor 2 besides its log file (Ray
Data's "constructor arguments in the object store and max_restarts > 0", once per actor, since Ray Data
passes its context and the UDF to each actor by reference): while the sweep runs (``native_stderr_to_log``),
descriptor 2 is a file in the session's log folder, ``longsweep-driver-native.err``, and Python's
``sys.stderr`` (our lines, warnings, the logging handlers that wrote to it) keeps the terminal. Only where
``sys.stderr`` is the process's own (a test capturing it is left alone).
With ``--verbose`` nothing is changed: Ray prints what it prints, and tracebacks too.

Ray Data's error records with a stack trace stay in its log file in both modes (``_NoTracebacks``, kept
for ``--verbose`` off as before); the command's last line names the root cause in one sentence.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from typing import Iterator

OFF = logging.CRITICAL + 1


def is_console(h: logging.Handler) -> bool:
    """A handler that writes to the terminal (not a file, not another program's capture, such as pytest's)."""
    if not isinstance(h, logging.StreamHandler) or isinstance(h, logging.FileHandler):
        return False
    return getattr(h, "stream", None) in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)


def quiet_ray() -> None:
    """Ray's console lines off in this process (idempotent); call it before ``ray.init``."""
    import ray  # noqa: F401 - sets up the "ray" logger and its console handler
    import ray.data
    from ray.data._internal.logging import SessionFileHandler

    ray_logger = logging.getLogger("ray")
    for h in ray_logger.handlers:
        if is_console(h):
            h.setLevel(OFF)
    if not any(isinstance(h, SessionFileHandler) for h in ray_logger.handlers):
        fh = SessionFileHandler("ray-driver.log")  # created in the session's log folder once Ray runs
        fh.setFormatter(logging.Formatter("%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"))
        ray_logger.addHandler(fh)
    for h in logging.getLogger("ray.data").handlers:
        if is_console(h):
            h.setLevel(OFF)
    ray.data.DataContext.get_current().enable_progress_bars = False
    _raylet_notices_to_log()


def _raylet_notices_to_log() -> None:
    """The cluster's notices to the driver (a node died, a task or actor retried: Ray prints them as
    ``(raylet) ...`` on stdout from a thread of its own) go to the ray logger's session file instead; the sweep
    says what matters in one line of its own (runtime/nodes.py: nodes lost, batches run again). Ray 2.60 has no
    setting for this: its printer (``ray._private.worker.print_to_stdstream``) is wrapped, raylet notices only."""
    import ray._private.worker as rw
    printer = rw.print_to_stdstream
    if getattr(printer, "_longsweep_quiet", False):
        return

    def quiet_printer(data, ignore_prefix: bool):
        if data.get("pid") == "raylet":
            for line in data.get("lines", []):
                logging.getLogger("ray").info("(raylet) %s", line)
            return
        return printer(data, ignore_prefix)

    quiet_printer._longsweep_quiet = True  # type: ignore[attr-defined]
    rw.print_to_stdstream = quiet_printer


def _session_logs() -> str | None:
    try:
        import ray
        node = ray._private.worker._global_node
        return node.get_logs_dir_path() if node is not None else None
    except Exception:  # noqa: BLE001 - no session folder known: nothing is moved
        return None


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[str | None]:
    """File descriptor 2 to ``<session logs>/longsweep-driver-native.err`` inside the block; ``sys.stderr``
    and the root logger's handlers that wrote to it keep the terminal. Yields the file's path, or None when
    nothing was moved (no Ray session, or ``sys.stderr`` is not this process's own)."""
    logs = _session_logs()
    if logs is None or sys.stderr is not sys.__stderr__ or sys.__stderr__ is None:
        yield None
        return
    old = sys.stderr
    old.flush()
    path = os.path.join(logs, "longsweep-driver-native.err")
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    new = io.TextIOWrapper(io.FileIO(saved, "w", closefd=False), encoding=old.encoding, errors=old.errors,
                           line_buffering=True)
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)
                and getattr(h, "stream", None) is old]
    sys.stderr = new
    for h in handlers:
        h.setStream(new)
    try:
        yield path
    finally:
        new.flush()
        os.dup2(saved, 2)
        sys.stderr = old
        for h in handlers:
            h.setStream(old)
        os.close(saved)


def live_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal that can hold a live progress bar (not a pipe, a file or a ``dumb``
    terminal; ``LONGSWEEP_PROGRESS=lines`` asks for the plain line every few seconds anyway)."""
    if os.environ.get("LONGSWEEP_PROGRESS", "").lower() == "lines" or os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False
