"""Result tables: read only and deduplicated for readers; quarantine and compaction for the lease holder."""

import logging
import os
import subprocess
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longsweep.jobs.generate import GenerateJob
from longsweep.results import to_table
from longsweep.store import compact_table, done_items, done_keys, quarantine_unreadable, read_table, write_manifest

SCHEMA = GenerateJob.schema()


def _write(path, rows):
    pq.write_table(to_table([{"status": "ok", **r} for r in rows], SCHEMA), path)


def _cut(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a writer killed half way: no footer


def _snapshot(d):
    return sorted((str(p.relative_to(d)), p.stat().st_mtime_ns, p.stat().st_size) for p in d.rglob("*"))


def test_a_file_cut_short_is_skipped_by_readers_and_never_renamed(tmp_path, caplog):
    table = tmp_path / "generations"
    table.mkdir()
    _write(table / "one.parquet", [{"key": "a"}, {"key": "b"}])
    _write(table / "two.parquet", [{"key": "c"}])
    _cut(table / "two.parquet")
    with caplog.at_level(logging.WARNING):  # a young file: a writer's, still being written, skipped quietly
        assert done_keys(table) == {"a", "b"}
    assert "unreadable" not in caplog.text
    old = time.time() - 600
    os.utime(table / "two.parquet", (old, old))  # left by a writer that was killed long ago
    before = _snapshot(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert done_keys(table) == {"a", "b"}
        assert done_keys(table) == {"a", "b"}  # stable on the next read
    assert _snapshot(tmp_path) == before, "a reader changed the sweep folder"
    assert "two.parquet" in caplog.text and "unreadable" in caplog.text


def test_the_lease_holder_quarantines_outside_the_table_so_pandas_reads_it(tmp_path):
    table = tmp_path / "generations"
    table.mkdir()
    _write(table / "one.parquet", [{"key": "a"}])
    _write(table / "two.parquet", [{"key": "c"}])
    _cut(table / "two.parquet")
    (table / "old.parquet.partial").write_bytes(b"PAR1 cut")  # left by an older version
    (table / ".w_x.parquet.tmp").write_bytes(b"half")  # a worker's temporary
    with pytest.raises(Exception):
        pd.read_parquet(table)
    moved = quarantine_unreadable(tmp_path, "generations")
    assert sorted(p.name for p in moved) == ["old.parquet.partial", "two.parquet"]
    assert all(p.parent == tmp_path / "quarantine" / "generations" for p in moved)
    assert sorted(p.name for p in table.iterdir()) == ["one.parquet"]
    assert list(pd.read_parquet(table)["key"]) == ["a"]


def test_duplicates_from_two_writers_count_once_newest_wins_and_are_named(tmp_path, caplog):
    table = tmp_path / "generations"
    table.mkdir()
    _write(table / "a.parquet", [{"key": "k1", "text": "old", "finished_at": "2026-01-01T00:00:00+00:00"},
                                 {"key": "k2", "text": "only", "finished_at": "2026-01-01T00:00:00+00:00"}])
    _write(table / "b.parquet", [{"key": "k1", "text": "new", "finished_at": "2026-01-02T00:00:00+00:00",
                                  "status": "error", "item_key": "k1"}])
    _write(table / "c.parquet", [{"key": "k3", "text": "x"}, {"key": "k3", "text": "y"}])  # same time: later row
    with caplog.at_level(logging.WARNING):
        t = read_table(table)
    by = {r["key"]: r for r in t.to_pylist()}
    assert t.num_rows == 3 and by["k1"]["text"] == "new" and by["k3"]["text"] == "y"
    assert "written more than once" in caplog.text and "k1" in caplog.text and "k3" in caplog.text
    assert done_items(table) == {"k1": 1, "k2": 1, "k3": 1}
    assert read_table(table, columns=["status"]).column_names == ["status"]


def test_compaction_many_small_files_into_few_each_key_once(tmp_path):
    table = tmp_path / "stories"
    table.mkdir()
    for i in range(40):
        _write(table / f"w_{i:03d}.parquet", [{"key": f"s{i}/turn{t}", "item_key": f"s{i}", "text": str(t)}
                                              for t in range(3)])
    _write(table / "w_dup.parquet", [{"key": "s0/turn0", "item_key": "s0", "text": "again",
                                      "finished_at": "2999-01-01T00:00:00+00:00"}])
    before = read_table(table)
    assert compact_table(table, rows_per_file=50) == (41, 3)
    files = sorted(p.name for p in table.iterdir())
    assert len(files) == 3 and all(f.startswith("compact-") and f.endswith(".parquet") for f in files)
    after = pd.read_parquet(table)
    assert len(after) == 120 and after["key"].is_unique
    assert after.set_index("key").loc["s0/turn0", "text"] == "again"
    assert sorted(after["key"]) == sorted(before.column("key").to_pylist())
    assert compact_table(table) is None  # few files: nothing to do


def test_compaction_that_fails_midway_loses_nothing(tmp_path, monkeypatch):
    table = tmp_path / "t"
    table.mkdir()
    for i in range(20):
        _write(table / f"f{i:02d}.parquet", [{"key": f"k{i}"}])
    real_replace = os.replace
    calls = []

    def failing_replace(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(a, b)

    monkeypatch.setattr("longsweep.store.location.os.replace", failing_replace)
    with pytest.raises(OSError):
        compact_table(table, rows_per_file=10)
    monkeypatch.undo()
    assert not [p for p in table.iterdir() if p.name.startswith(".")], "a temporary was left behind"
    assert sorted(done_keys(table)) == sorted(f"k{i}" for i in range(20))  # old files all there; one copy counted
    assert len(read_table(table)) == 20


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (needs root to mount)."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (not root?): {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_manifest_on_a_full_disk_raises_and_leaves_no_temporary(tiny_disk):
    write_manifest(tiny_disk, sweep_id="s", job="generate")
    (tiny_disk / "filler").write_bytes(b"")
    with open(tiny_disk / "filler", "wb") as f:
        try:
            f.write(b"x" * 10**6)
        except OSError:
            pass
    with pytest.raises(OSError) as e:
        write_manifest(tiny_disk, sweep_id="s", job="generate", note="x" * 200_000)
    assert e.value.errno == 28
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "manifest.json"]


def test_readers_work_on_a_read_only_folder(tmp_path):
    table = tmp_path / "ro" / "generations"
    table.mkdir(parents=True)
    _write(table / "one.parquet", [{"key": "a"}])
    _write(table / "two.parquet", [{"key": "b"}])
    _cut(table / "two.parquet")
    r = subprocess.run(["mount", "--bind", "-o", "ro", str(tmp_path / "ro"), str(tmp_path / "ro")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here (not root?): {r.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(tmp_path / "ro")], check=True)
        with pytest.raises(OSError):
            (table / "probe").write_text("x")
        assert done_keys(table) == {"a"}
        from longsweep.reporting.tables import build_report
        assert build_report(tmp_path / "ro")["generations"]["counts"]["rows"] == 1
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "ro")], check=False)


def test_rows_since_counts_this_runs_rows_and_skips_older_row_groups_by_their_statistics(tmp_path):
    from longsweep.store import rows_since
    t = pa.table({"key": [f"k{i}" for i in range(6)],
                  "finished_at": ["2026-01-01T00:00:00"] * 3 + ["2026-06-01T00:00:00", None, "2026-07-01T00:00:00"]})
    pq.write_table(t, tmp_path / "a.parquet", row_group_size=3)  # one old group, one of this run
    pq.write_table(pa.table({"key": ["x"]}), tmp_path / "no-time.parquet")
    (tmp_path / "cut.parquet").write_bytes(b"PAR1 cut short")
    assert rows_since(tmp_path, "2026-05-01") == 2
    assert rows_since(tmp_path, "2025-01-01") == 5 and rows_since(tmp_path, "2027-01-01") == 0
    assert rows_since(tmp_path / "absent", "2026-05-01") == 0
