"""One writer per sweep folder: a lease file, ``<sweep>/lease.json``, with host, pid and start time.

A run takes the lease before it writes anything and gives it back when it ends. A second run into the
same folder is refused (``SweepBusyError``, exit 2) with who holds it. A lease is stale, and is taken
over, when

  - its process is gone on this host (the pid is dead, or now belongs to a process started later), or
  - it has not been renewed for ``STALE_AFTER_S`` (10 minutes): the holder renews it every
    ``RENEW_EVERY_S`` (30 s), so only a holder on another host that died, or a frozen one, lets it age.

Taking and taking over happen under an exclusive ``flock`` of ``<sweep>/.lease.guard``, so two runs that
find the same stale lease cannot both win. The guard is held for milliseconds, never for the run.

On an object store (``s3://``) there is no flock and no rename: the lease is an object created with a
conditional write (``If-None-Match: *``: of two runs, one creates it, the other is refused), renewed and
taken over with ``If-Match`` on the ETag it read (two runs that find the same stale lease: one wins), and
released with a conditional delete (store/lease_s3.py). Its age is the holder's ``renewed_at`` clock time.
A store with neither (``gs://`` through pyarrow, other fsspec stores) gets a write-then-read-back lease:
it refuses a second run that starts after the first one's lease is visible, not two started in the same
second (docs/STORE.md).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from longsweep.errors import SweepBusyError
from longsweep.store.location import loc

logger = logging.getLogger(__name__)

LEASE_FILE = "lease.json"
GUARD_FILE = ".lease.guard"
RENEW_EVERY_S = 30.0
STALE_AFTER_S = 600.0


def _proc_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when it does not exist."""
    try:
        import psutil
        return psutil.Process(pid).create_time()
    except ImportError:  # pragma: no cover - psutil comes with ray[default]
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess, AccessDenied, ZombieProcess
        try:
            os.kill(pid, 0)
            return 0.0
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable or half written: judged by its age alone


def stale_reason(info: dict[str, Any], age_s: float, *, host: str | None = None) -> str | None:
    """Why a lease held as ``info``, last renewed ``age_s`` ago, no longer counts; None while it holds."""
    host = host or socket.gethostname()
    if age_s > STALE_AFTER_S:
        return f"not renewed for {age_s:.0f} s (> {STALE_AFTER_S:.0f} s)"
    if info.get("host") == host and isinstance(info.get("pid"), int):
        started = _proc_start(info["pid"])
        if started is None:
            return f"process {info['pid']} is gone"
        if started and info.get("proc_started") and started > info["proc_started"] + 1:
            return f"process {info['pid']} is gone (its pid now belongs to another process)"
    return None


@dataclass
class Lease:
    """A held lease; ``release()`` (or leaving ``hold``) gives it back."""

    path: Path
    token: str
    info: dict[str, Any]
    remote: Any = None  # store/lease_s3.py's RemoteLease on an object store
    _stop: threading.Event | None = None
    _thread: threading.Thread | None = None

    def held(self) -> bool:
        """The lease file still names this run (nobody took it over)."""
        if self.remote is not None:
            return self.remote.held()
        cur = _read(self.path)
        return bool(cur) and cur.get("token") == self.token

    def renew(self) -> None:
        if self.remote is not None:
            self.remote.renew()
        elif self.held():
            os.utime(self.path)

    def _renew_loop(self, every_s: float) -> None:
        assert self._stop is not None
        while not self._stop.wait(every_s):
            try:
                self.renew()
            except OSError as e:  # a full disk does not stop the run; the next renewal tries again
                logger.warning("lease %s: cannot renew (%s)", self.path, e)

    def start_renewing(self, every_s: float = RENEW_EVERY_S) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, args=(every_s,), daemon=True,
                                        name="lease-renew")
        self._thread.start()

    def release(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self.remote is not None:
            self.remote.release()
            return
        with _guard(self.path.parent):
            if self.held():
                self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def _guard(sweep_dir: Path) -> Iterator[None]:
    fd = os.open(sweep_dir / GUARD_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def describe(info: dict[str, Any], age_s: float) -> str:
    who = f"pid {info.get('pid', '?')} on {info.get('host', '?')}"
    since = f", started {info['started_at']}" if info.get("started_at") else ""
    cmd = f" ({info['command']})" if info.get("command") else ""
    return f"{who}{since}, renewed {age_s:.0f} s ago{cmd}"


def acquire(sweep_dir: str | Path, *, command: str | None = None) -> Lease:
    """Take the sweep folder's lease (creating the folder), or raise ``SweepBusyError``; a folder that is not
    a sweep's (``store/folder.py``: a ``manifest.json`` that is not ours) is refused first, untouched."""
    from longsweep.store.folder import check_sweep_folder
    check_sweep_folder(sweep_dir)
    host = socket.gethostname()
    info = {"host": host, "pid": os.getpid(), "proc_started": _proc_start(os.getpid()),
            "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command, "token": uuid.uuid4().hex}
    where = loc(sweep_dir)
    if not where.local:
        from longsweep.store.lease_s3 import acquire_remote
        remote = acquire_remote(where / LEASE_FILE, info, busy=_busy, stale_reason=stale_reason)
        return Lease(where / LEASE_FILE, info["token"], info, remote=remote)
    sweep_dir = Path(where.path)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / LEASE_FILE
    with _guard(sweep_dir):
        cur = _read(path)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:  # removed by hand meanwhile
            cur = None
        if cur is not None:
            why = stale_reason(cur, age, host=host)
            if why is None:
                raise _busy(sweep_dir, cur, age)
            logger.warning("%s: taking over a stale lease of %s: %s", sweep_dir, describe(cur, age), why)
        tmp = sweep_dir / f".{LEASE_FILE}.{info['token']}.tmp"
        try:
            tmp.write_text(json.dumps(info, indent=2))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return Lease(path, info["token"], info)


def _busy(where: Any, cur: dict[str, Any], age: float) -> SweepBusyError:
    return SweepBusyError(
        f"{where} is in use by another run: {describe(cur, age)}. Wait for it to end, or write to another "
        f"--out. (A lease whose process is gone, or that was not renewed for {STALE_AFTER_S:.0f} s, is taken over.)")


@contextlib.contextmanager
def hold(sweep_dir: str | Path, *, command: str | None = None, renew_every_s: float = RENEW_EVERY_S
         ) -> Iterator[Lease]:
    """The lease for the block: taken, renewed in the background, given back at the end."""
    lease = acquire(sweep_dir, command=command)
    lease.start_renewing(renew_every_s)
    try:
        yield lease
    finally:
        try:
            lease.release()
        except OSError as e:
            logger.warning("lease %s: cannot release (%s); the next run takes it over", lease.path, e)
