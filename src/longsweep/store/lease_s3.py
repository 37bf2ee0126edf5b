"""The sweep lease on an object store (store/lease.py holds the rules: one writer, stale after 10 minutes).

S3 (and S3-compatible servers) take conditional writes: ``If-None-Match: *`` creates the lease object only
where none exists, ``If-Match: <ETag>`` renews or takes over only the version that was read, and a
conditional delete releases only our own. Other stores (``gs://`` through pyarrow, fsspec) get a lease
written, then read back after a moment: a second run is refused once the first one's lease is visible.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable

from longsweep.store.location import Loc

logger = logging.getLogger(__name__)

READ_BACK_S = 1.0


def _s3_client():
    import boto3  # the [s3] extra; Ray's cluster images have it
    env = os.environ
    return boto3.client("s3", endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
                        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None)


def _failed_precondition(e: Exception) -> bool:
    code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class RemoteLease:
    """A lease object on S3: ``info`` plus ``renewed_at``, versioned by its ETag."""

    def __init__(self, where: Loc, info: dict[str, Any]):
        self.where, self.info = where, dict(info)
        self.bucket, _, self.key = where.path.partition("/")
        self.client = _s3_client()
        self.etag: str | None = None

    def read(self) -> tuple[dict[str, Any], str, float] | None:
        """(the lease's content, its ETag, seconds since it was renewed), or None when there is none."""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None
        try:
            cur = json.loads(r["Body"].read())
        except ValueError:
            cur = {}
        renewed = cur.get("renewed_at") or r["LastModified"].timestamp()
        return cur, r["ETag"], time.time() - float(renewed)

    def _put(self, **cond: str) -> bool:
        body = json.dumps({**self.info, "renewed_at": time.time()}, indent=2).encode()
        try:
            r = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **cond)
        except Exception as e:  # noqa: BLE001 - botocore's ClientError
            if _failed_precondition(e):
                return False
            raise
        self.etag = r["ETag"]
        return True

    def create(self) -> bool:
        return self._put(IfNoneMatch="*")

    def take_over(self, etag: str) -> bool:
        return self._put(IfMatch=etag)

    def held(self) -> bool:
        cur = self.read()
        return cur is not None and cur[0].get("token") == self.info["token"]

    def renew(self) -> None:
        if self.etag and not self._put(IfMatch=self.etag):
            logger.warning("lease %s: taken over by another run", self.where)

    def release(self) -> None:
        if not self.etag:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except Exception as e:  # noqa: BLE001 - not ours any more, or already gone: nothing to give back
            if not _failed_precondition(e):
                logger.warning("lease %s: cannot release (%s)", self.where, type(e).__name__)


class ReadBackLease:
    """A store without conditional writes: write the lease, wait, read it back; ours if it still names us."""

    def __init__(self, where: Loc, info: dict[str, Any]):
        self.where, self.info = where, dict(info)

    def read(self) -> tuple[dict[str, Any], str, float] | None:
        try:
            cur = json.loads(self.where.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            cur = {}
        return cur, "", time.time() - float(cur.get("renewed_at") or 0)

    def _write(self) -> bool:
        self.where.write_text(json.dumps({**self.info, "renewed_at": time.time()}, indent=2))
        time.sleep(READ_BACK_S)
        return self.held()

    create = _write

    def take_over(self, etag: str) -> bool:
        return self._write()

    def held(self) -> bool:
        cur = self.read()
        return cur is not None and cur[0].get("token") == self.info["token"]

    def renew(self) -> None:
        if self.held():
            self.where.write_text(json.dumps({**self.info, "renewed_at": time.time()}, indent=2))

    def release(self) -> None:
        if self.held():
            self.where.unlink()


def acquire_remote(where: Loc, info: dict[str, Any], *, busy: Callable[..., Exception],
                   stale_reason: Callable[[dict[str, Any], float], str | None]) -> Any:
    """Take the lease at ``where`` or raise ``busy(where.parent, content, age)``; a lease is taken over when
    ``stale_reason(content, age)`` says why it no longer holds (store/lease.py's rules)."""
    scheme = where.uri.split("://", 1)[0].lower()
    lease = RemoteLease(where, info) if scheme in ("s3", "s3a") else ReadBackLease(where, info)
    for _ in range(3):
        if lease.create():
            return lease
        cur = lease.read()
        if cur is None:  # released meanwhile: try again
            continue
        content, etag, age = cur
        why = stale_reason(content, age)
        if why is None:
            raise busy(where.parent, content, age)
        logger.warning("%s: taking over a stale lease (pid %s on %s): %s", where.parent, content.get("pid"),
                       content.get("host"), why)
        if lease.take_over(etag):
            return lease
    raise busy(where.parent, (lease.read() or ({}, "", 0.0))[0], 0.0)
