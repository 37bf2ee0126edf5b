import io

import pyarrow as pa
import pyarrow.parquet as pq

from longsweep.runtime.progress import Progress


def test_progress_counts_rows_written_after_start(tmp_path):
    pq.write_table(pa.table({"status": ["ok"], "completion_tokens": [5]}), tmp_path / "old.parquet")
    out = io.StringIO()
    with Progress(tmp_path, total=3, already={"k0"}, every_s=60, stream=out) as p:
        pq.write_table(pa.table({"status": ["ok", "error"], "completion_tokens": [10, None]}), tmp_path / "a.parquet")
    assert (p.done, p.errors, p.tokens) == (2, 1, 10)
    line = out.getvalue().strip().splitlines()[-1]
    assert "rows 2/3 (+1 done before)" in line and "errors 1" in line and "ETA" in line
