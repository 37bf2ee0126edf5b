"""A real S3-compatible server on 127.0.0.1 for the tests (moto in server mode): pyarrow's C++ S3 client,
boto3 and Ray's worker processes all talk to it over HTTP, as they would to S3."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import pytest


@dataclass
class S3:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        c = self.client()
        out = {}
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = c.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
        return out

    def download(self, prefix: str, dest) -> None:
        """Copy ``s3://bucket/prefix`` to a local folder (for readers that take a path: pandas, duckdb)."""
        import pyarrow.fs as pafs
        from longsweep.store import loc
        src = loc(self.uri(prefix))
        pafs.copy_files(src.path, str(dest), source_filesystem=src.fs, destination_filesystem=pafs.LocalFileSystem())

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}


@pytest.fixture(scope="session")
def s3():
    """The server, one bucket, and the standard AWS variables set for this process (what a user exports)."""
    pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
    from moto.server import ThreadedMotoServer
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s = S3(f"http://{host}:{port}", "longsweep-test", "AKIA" + secrets.token_hex(8).upper(), secrets.token_hex(20))
    saved = {k: os.environ.get(k) for k in s.env()}
    os.environ.update(s.env())
    s.client().create_bucket(Bucket=s.bucket)
    yield s
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()
