"""Several models in one sweep run at the same time, each with its own actor pool, into one table."""

import json

import pyarrow.parquet as pq
import pytest
import yaml

pytestmark = pytest.mark.integration


def test_two_models_run_concurrently_and_each_key_is_written_once(ray_local, tmp_path, capfd):
    from longsweep.cli import main
    from longsweep.config import PACKAGED_MODELS_FILE
    reg = yaml.safe_load(PACKAGED_MODELS_FILE.read_text())
    small = reg["models"]["smollm2-135m"]
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": {"twin-a": small, "twin-b": small}}))
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(json.dumps({"id": f"p{i}", "prompt": f"Write two sentences about the number {i}."})
                                 for i in range(6)))
    code = main(["generate", str(prompts), "--model", "twin-a", "--model", "twin-b", "--models-file",
                 str(tmp_path / "models.yaml"), "--out", str(tmp_path / "o"), "--max-tokens", "24",
                 "--batch-items", "1"])
    cap = capfd.readouterr()
    out = cap.out
    assert code == 0, out
    rows = pq.read_table(tmp_path / "o" / "generations").to_pylist()
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 12
    assert {r["model"] for r in rows} == {"twin-a", "twin-b"}
    assert "[twin-a]" in out and "[twin-b]" in out, cap.err[-2000:]
    # each model's summary counts its own rows, not the table's
    assert out.count("items: 6 (0 already done, 6 run now); rows: 6\n") == 2, out
    # one progress line per model, each counting its own rows
    for m in ("twin-a", "twin-b"):
        assert f"rows 6/6 (+0 done before)  errors 0" in cap.err and f"({m})" in cap.err, cap.err[-2000:]
    assert "rows 12/6" not in cap.err
    # the two pools overlapped in time: each model finished rows while the other was still writing rows
    span = {m: sorted(r["finished_at"] for r in rows if r["model"] == m) for m in ("twin-a", "twin-b")}
    a, b = span["twin-a"], span["twin-b"]
    assert a[0] < b[-1] and b[0] < a[-1], span
    assert len({r["worker"] for r in rows}) >= 2
    # each model's end is on the manifest under its name
    runs = json.loads((tmp_path / "o" / "manifest.json").read_text())["runs"]
    ends = sorted(r["model_name"] for r in runs if r.get("finished_at") and "counts" in r)
    assert ends == ["twin-a", "twin-b"], runs
