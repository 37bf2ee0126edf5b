"""The resume index trusts only complete Parquet files."""

import pyarrow.parquet as pq

from longsweep.results import GENERATION_SCHEMA, done_keys, to_table


def test_a_file_cut_short_is_set_aside_and_its_keys_run_again(tmp_path):
    pq.write_table(to_table([{"key": "a", "status": "ok"}, {"key": "b", "status": "ok"}], GENERATION_SCHEMA),
                   tmp_path / "one.parquet")
    pq.write_table(to_table([{"key": "c", "status": "ok"}], GENERATION_SCHEMA), tmp_path / "two.parquet")
    data = (tmp_path / "two.parquet").read_bytes()
    (tmp_path / "two.parquet").write_bytes(data[: len(data) // 2])  # a writer killed half way
    assert done_keys(tmp_path) == {"a", "b"}
    assert (tmp_path / "two.parquet.partial").exists() and not (tmp_path / "two.parquet").exists()
    assert done_keys(tmp_path) == {"a", "b"}  # stable on the next read
