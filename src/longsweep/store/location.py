"""Where a sweep's files live: a local path, ``s3://bucket/prefix``, ``gs://bucket/prefix``, or any fsspec URI.

``Loc`` is one file or folder on a ``pyarrow.fs`` filesystem (``FileSystem.from_uri``; fsspec through
``PyFileSystem``), with the few operations a sweep store needs. Object stores have no rename and no
folders: ``publish`` writes a file once under its final name (a local folder writes a hidden temporary and
renames it, so a reader never sees half a file), ``mkdir`` is a no-op there, ``move`` is copy then delete.

Credentials come from the standard environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` for an S3-compatible
server; Google's default credentials) or the node's role. A ``Loc`` crosses to Ray workers as its URI plus
the driver's credential variables wrapped in a ``Secret`` (masked in Ray's object store, never in a
runtime_env, a row, the manifest or a message); a worker uses them only when its own environment has none.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import uuid
from pathlib import Path
from typing import Any, Iterator

import pyarrow.fs as pafs

from longsweep.secrets import Secret

CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                   "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "GOOGLE_APPLICATION_CREDENTIALS")


def is_uri(text: str | os.PathLike) -> bool:
    """``scheme://...`` other than ``file://``: a store that is not this machine's file system."""
    s = os.fspath(text) if not isinstance(text, str) else text
    return "://" in s and not s.startswith("file://")


def _s3(endpoint: str | None) -> pafs.S3FileSystem:
    kw: dict[str, Any] = {}
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        kw.update(access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
                  session_token=env.get("AWS_SESSION_TOKEN") or None)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        kw["region"] = region
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kw.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    return pafs.S3FileSystem(**kw)


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path in it for ``uri`` (a local path is made absolute)."""
    if not is_uri(uri):
        p = uri[len("file://"):] if uri.startswith("file://") else uri
        return pafs.LocalFileSystem(), str(Path(p).expanduser().resolve())
    scheme = uri.split("://", 1)[0].lower()
    if scheme in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return _s3(endpoint), uri.split("://", 1)[1].rstrip("/")
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path.rstrip("/")
    except (ValueError, OSError):
        import fsspec  # any other scheme fsspec knows (memory://, az://, ...)
        f, path = fsspec.core.url_to_fs(uri)
        return pafs.PyFileSystem(pafs.FSSpecHandler(f)), path.rstrip("/")


def _rebuild(uri: str, creds: Secret | None) -> "Loc":
    if creds is not None and not any(os.environ.get(v) for v in CREDENTIAL_VARS[:2]):
        import json
        for k, v in json.loads(creds.reveal()).items():
            os.environ.setdefault(k, v)
    return Loc(uri)


class Loc:
    """One file or folder of a store. ``str()`` is the URI (or the local path) the user gave."""

    def __init__(self, uri: str | os.PathLike, *, _fs: pafs.FileSystem | None = None, _path: str | None = None):
        self.uri = os.fspath(uri).rstrip("/") if is_uri(os.fspath(uri)) else os.fspath(uri)
        if _fs is None:
            _fs, _path = filesystem(self.uri)
        self.fs, self.path = _fs, _path
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    # --- names -------------------------------------------------------------------------------------
    def __truediv__(self, name: str) -> "Loc":
        sep = "" if self.uri.endswith("/") else "/"
        return Loc(f"{self.uri}{sep}{name}", _fs=self.fs, _path=posixpath.join(self.path, name))

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def parent(self) -> "Loc":
        up = posixpath.dirname(self.path)
        uri = self.uri.rsplit("/", 1)[0] if "/" in self.uri.split("://", 1)[-1] else up
        return Loc(uri, _fs=self.fs, _path=up)

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Loc({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, os.PathLike) and not isinstance(other, Loc):  # a local path: the same file?
            return self.local and self.path == str(Path(other).expanduser().resolve())
        return isinstance(other, Loc) and other.path == self.path and type(other.fs) is type(self.fs)

    def __hash__(self) -> int:
        return hash(self.path)

    def __lt__(self, other: "Loc") -> bool:
        return self.path < other.path

    def __fspath__(self) -> str:
        if not self.local:
            raise TypeError(f"{self.uri} is not a local path")
        return self.path

    def __reduce__(self):
        import json
        env = {k: os.environ[k] for k in CREDENTIAL_VARS if os.environ.get(k)}
        return (_rebuild, (self.uri, Secret(json.dumps(env)) if env else None))

    # --- what is there -----------------------------------------------------------------------------
    def info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        return self.info().type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self.info().type == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self.info().type == pafs.FileType.File

    def mtime(self) -> float | None:
        m = self.info().mtime
        return m.timestamp() if m is not None else None

    def files(self, suffix: str = "", *, hidden: bool = False) -> list["Loc"]:
        """The plain files directly in this folder whose name ends with ``suffix``, sorted by name."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = [Loc(f"{self.uri}/{i.base_name}", _fs=self.fs, _path=i.path) for i in infos
               if i.type == pafs.FileType.File and i.base_name.endswith(suffix)
               and (hidden or not i.base_name.startswith("."))]
        return sorted(out, key=lambda x: x.name)

    def folders(self) -> list["Loc"]:
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted((Loc(f"{self.uri}/{i.base_name}", _fs=self.fs, _path=i.path) for i in infos
                       if i.type == pafs.FileType.Directory), key=lambda x: x.name)

    def iterdir(self) -> list["Loc"]:
        return self.folders() + self.files(hidden=True)

    def glob(self, pattern: str) -> list["Loc"]:
        """Entries matching a relative pattern of ``/``-separated ``fnmatch`` parts (no ``**``)."""
        found = [self]
        for part in pattern.split("/"):
            found = [c for d in found for c in d.iterdir() if fnmatch.fnmatch(c.name, part)]
        return sorted(found, key=lambda x: x.path)

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name.lstrip(".") else self.name

    def resolve(self) -> "Loc":
        return self  # already absolute

    # --- reading and writing -----------------------------------------------------------------------
    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as f:
            return f.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def mkdir(self) -> None:
        if self.local:
            self.fs.create_dir(self.path, recursive=True)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Any]:
        """A stream whose bytes become this file only when the block ends without an error: a reader sees
        the old file or the new one, never part of one (locally a hidden temporary renamed into place; on an
        object store the object appears when its upload completes, and is removed again on an error)."""
        if not self.local:
            try:
                with self.fs.open_output_stream(self.path) as f:
                    yield f
            except BaseException:
                self.unlink()
                raise
            return
        self.parent.mkdir()
        tmp = f"{posixpath.dirname(self.path)}/.{self.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(tmp, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def publish(self, data: bytes) -> None:
        """Write the whole file at once (``writing``)."""
        with self.writing() as f:
            f.write(data)

    def write_text(self, text: str) -> None:
        self.publish(text.encode("utf-8"))

    def unlink(self, missing_ok: bool = True) -> None:
        try:
            self.fs.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def move(self, dest: "Loc") -> None:
        """Move a file (a rename locally; copy then delete on an object store)."""
        dest.parent.mkdir()
        if self.local and dest.local:
            os.replace(self.path, dest.path)
        else:
            self.fs.copy_file(self.path, dest.path)
            self.unlink()


def loc(where: "str | os.PathLike | Loc") -> Loc:
    """A ``Loc`` for a path, a URI or a ``Loc``."""
    return where if isinstance(where, Loc) else Loc(where)
