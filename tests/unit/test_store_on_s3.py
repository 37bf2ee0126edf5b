"""The sweep store on a real S3-compatible server (moto on 127.0.0.1): the same tables, compaction,
quarantine, manifest and lease as on a local disk, without renames."""

import json
import os
import socket
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from longsweep.errors import InputError, SweepBusyError
from longsweep.jobs.generate import GenerateJob
from longsweep.results import to_table
from longsweep.store import (compact_table, done_items, loc, publish_table, quarantine_unreadable, read_manifest,
                             read_table, write_manifest)
from longsweep.store import lease

SCHEMA = GenerateJob.schema()


def _rows(keys, **kw):
    return to_table([{"key": k, "status": "ok", "finished_at": "2026-01-01T00:00:00", **kw} for k in keys], SCHEMA)


def test_tables_on_s3_publish_read_dedupe_compact_and_quarantine(s3):
    sweep = loc(s3.uri("unit/tables"))
    table = sweep / "generations"
    for i in range(17):
        publish_table(table, _rows([f"k{i}", f"k{i + 1}"]))
    (table / "cut.parquet").publish(b"PAR1 half a file")  # what a writer killed mid-file would leave
    t = read_table(table, columns=["key"])
    assert sorted(t.column("key").to_pylist()) == sorted(f"k{i}" for i in range(18))  # each key once
    assert done_items(table) == {f"k{i}": 1 for i in range(18)}
    assert compact_table(table) is None  # an unreadable file: the quarantine comes first
    moved = quarantine_unreadable(sweep, "generations")
    assert [m.uri for m in moved] == [s3.uri("unit/tables/quarantine/generations/cut.parquet")]
    assert compact_table(table, rows_per_file=20) == (17, 1)
    assert [f.name.startswith("compact-") for f in table.files()] == [True]
    assert read_table(table).num_rows == 18
    keys = [k for k in s3.objects("unit/tables/") if not k.endswith("/")]
    assert not [k for k in keys if ".tmp" in k], keys  # an object store gets no temporaries


def test_manifest_and_folder_check_on_s3(s3):
    sweep = loc(s3.uri("unit/manifest"))
    write_manifest(sweep, sweep_id="m", job="generate")
    write_manifest(sweep, sweep_id="m", job="generate", counts={"rows": 3})
    m = read_manifest(sweep)
    assert [r.get("counts") for r in m["runs"]] == [None, {"rows": 3}]
    (loc(s3.uri("unit/notours")) / "manifest.json").write_text("[1, 2]")
    from longsweep.store.folder import check_sweep_folder
    with pytest.raises(InputError, match="not a sweep"):
        check_sweep_folder(s3.uri("unit/notours"))


def test_the_lease_on_s3_refuses_a_second_writer_and_takes_over_a_dead_one(s3):
    where = s3.uri("unit/lease")
    first = lease.acquire(where, command="first")
    with pytest.raises(SweepBusyError, match="in use by another run"):
        lease.acquire(where, command="second")
    assert first.held()
    first.renew()
    first.release()
    assert not first.held()
    second = lease.acquire(where, command="second")  # released: free again
    second.release()
    # a holder killed outright (its pid is gone on this host) leaves its lease: the next run takes it over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    info = {"host": socket.gethostname(), "pid": int(dead.stdout), "proc_started": time.time() - 5,
            "token": "gone", "renewed_at": time.time()}
    s3.client().put_object(Bucket=s3.bucket, Key="unit/lease/lease.json", Body=json.dumps(info).encode())
    third = lease.acquire(where, command="third")
    assert third.held()
    third.release()


def test_an_s3_out_without_a_prefix_is_refused_before_ray(s3, capsys):
    from longsweep.cli import main
    code = main(["echo", os.devnull, "--model", "smollm2-135m", "--out", f"s3://{s3.bucket}"])
    assert code == 2
    assert "s3://BUCKET/PREFIX" in capsys.readouterr().err


def test_a_loc_crosses_to_a_process_without_the_credentials_and_masks_them(s3):
    import pickle
    blob = pickle.dumps(loc(s3.uri("unit/pickled")) / "x.json")
    assert s3.secret_key.encode() not in blob and s3.access_key.encode() not in blob
    code = ("import os, pickle, sys\n"
            "for k in [k for k in os.environ if k.startswith('AWS_')]: del os.environ[k]\n"
            "x = pickle.loads(sys.stdin.buffer.read()); x.write_text('from a worker'); print(x.read_text())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, env=env, timeout=60)
    assert out.stdout.decode().strip() == "from a worker", out.stderr.decode()[-500:]
