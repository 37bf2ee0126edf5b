"""The streamed prompt file (runtime/stream_input.py): ids hashed without Python sets, repeats named, the
anti-join of resume, Parquet inputs, and lines decided one by one as the read tasks decide them."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longsweep.errors import InputError
from longsweep.jobs.generate.inputs import parse_line, read_prompts
from longsweep.runtime import stream_scan
from longsweep.runtime.stream_hash import hash_ids, hash_strings, member, unique_pairs
from longsweep.runtime.stream_input import BLOCK_BYTES, Todo, done_id_hashes, scan_prompts, span_lines, todo_mask


def test_hashes_are_the_same_from_arrow_and_from_python_and_tell_ids_apart():
    ids = [f"p{i:07d}" for i in range(200_000)] + ["a", "b", "ab", "ba", "é", "x" * 5000]
    h = hash_ids(ids)
    assert h.shape == (2, len(ids)) and unique_pairs(h).shape[1] == len(ids)
    # each half alone tells them apart too (two independent 64-bit hashes)
    assert len(np.unique(h[0])) == len(np.unique(h[1])) == len(ids)
    arr = pa.chunked_array([pa.array(ids[:7]), pa.array(ids[7:])])
    assert (hash_strings(pa.array(ids, pa.large_string())) == h).all()
    assert (hash_strings(arr) == h).all()
    assert (hash_strings(pa.array(ids).slice(5, 10)) == h[:, 5:15]).all()


def test_a_pair_that_shares_its_first_half_with_another_is_still_told_apart():
    # first halves equal, second halves differ: what a 64-bit hash alone would have taken for one id
    ref = np.array([[5, 5, 5, 9, 1], [30, 10, 20, 1, 7]], dtype=np.uint64)
    s = unique_pairs(np.concatenate([ref, ref[:, :2]], axis=1))
    assert s.tolist() == [[1, 5, 5, 5, 9], [7, 10, 20, 30, 1]]
    needles = np.array([[5, 5, 5, 9, 9, 2], [20, 30, 11, 1, 2, 7]], dtype=np.uint64)
    assert member(needles, s).tolist() == [True, True, False, True, False, False]
    assert member(needles, s, step=2).tolist() == [True, True, False, True, False, False]


def test_a_mixed_file_is_scanned_in_spans_with_every_line_numbered(tmp_path):
    f = tmp_path / "p.jsonl"
    lines = ['{"id": "a", "prompt": "x"}', "", '{"id": 3, "prompt": "y"}', '{"prompt": "z"}', "not json",
             '{"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": []}}']
    big = [json.dumps({"id": f"q{i}", "prompt": "w" * 100}) for i in range(2 * BLOCK_BYTES // 110)]
    f.write_text("\n".join(lines + big) + "\n")
    scan = scan_prompts(f)
    assert scan.n_prompts == len(lines) - 1 + len(big) and len(scan.spans) >= 2
    got = [(n, ln) for s in scan.spans for n, ln in span_lines(str(f), "jsonl", s)]
    assert [n for n, _ in got] == list(range(1, len(lines) + len(big) + 1)) and got[4] == (5, "not json")
    # the ids the scan hashed are the ones each line is decided with
    want = [parse_line(ln, n, "p.jsonl", max_tokens=None)[0] for n, ln in got if ln.strip()]
    assert want[:5] == ["a", "3", "4", "5", "c"]
    assert (scan.hashes[:, ~scan.blank] == hash_ids(want)).all()


def test_repeats_are_all_named_and_file_wide_problems_refused(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "a"}\n["x"]\n{"id": "4"}\n{"id": "b"}\n')
    with pytest.raises(InputError, match=r"ids must be unique; repeated: '4', 'a', 'b'$"):
        scan_prompts(f)
    f.write_text("\n  \n")
    with pytest.raises(InputError, match="no prompts"):
        scan_prompts(f)
    f.write_bytes(b'{"id": "a", "prompt": "\xff"}\n')
    with pytest.raises(InputError, match="cannot read"):
        scan_prompts(f)
    with pytest.raises(InputError, match="cannot read"):
        scan_prompts(tmp_path / "absent.jsonl")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read"):
        scan_prompts(tmp_path / "bad.parquet")


def test_parquet_rows_are_lines_like_jsonl_ones(tmp_path):
    f = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["a", "b", None], "prompt": ["hi", "", "x"], "temperature": [0.5, None, None]}),
                   f, row_group_size=2)
    scan = scan_prompts(f)
    assert scan.fmt == "parquet" and len(scan.spans) == 2 and scan.n_prompts == 3
    rows = [(n, r) for s in scan.spans for n, r in span_lines(str(f), "parquet", s)]
    decided = [parse_line(r, n, "p.parquet", max_tokens=None) for n, r in rows]
    assert decided[0] == ("a", {"id": "a", "messages": [{"role": "user", "content": "hi"}],
                                "sampling": {"temperature": 0.5}}, None)
    assert decided[1] == ("b", None, "p.parquet:2: prompt: empty") and decided[2][0] == "3"
    assert (scan.hashes == hash_ids(["a", "b", "3"])).all()


def test_resume_is_an_anti_join_of_this_models_keys(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"id": f"p{i}", "prompt": "x"}) + "\n" for i in range(10)))
    table = tmp_path / "echoes"
    table.mkdir()
    pq.write_table(pa.table({"key": ["p1/m", "p4/m", "p5/other", "zz/m"], "item_key": [None, "p4/m", None, None]}),
                   table / "a.parquet")
    (table / "broken.parquet").write_bytes(b"cut short")
    done = done_id_hashes(table, "m")
    assert done.shape == (2, 3)
    todo = todo_mask(scan_prompts(f), done)
    assert np.flatnonzero(~todo).tolist() == [1, 4]


def test_a_big_file_is_scanned_and_joined_in_a_child_and_the_driver_keeps_bits(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGSWEEP_SCAN_CHILD_BYTES", "0")  # every file is big
    monkeypatch.setenv("LONGSWEEP_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"id": f"p{i}", "prompt": "w" * 200}) + "\n" for i in range(50_000)) + "\n")
    table = tmp_path / "echoes"
    table.mkdir()
    pq.write_table(pa.table({"key": [f"p{i}/m" for i in range(0, 50_000, 2)]}), table / "a.parquet")
    scan = stream_scan.scan(str(f))
    assert scan.kept and scan.lines is None and scan.n_prompts == 50_000 and len(scan.spans) >= 2
    assert stream_scan.scan(str(f)) is scan  # kept for the sweep that follows
    todo = stream_scan.todo(scan, table, "m")
    assert todo.n_todo == 25_000
    left = np.concatenate([np.flatnonzero(Todo.mask(s, b)) + s.first_line for s, b in todo.spans])
    assert left.tolist() == list(range(2, 50_001, 2))  # line n holds p{n-1}: the odd ids are left
    f.write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(InputError, match="repeated: 'a'"):  # the child's refusal, raised here
        stream_scan.scan(str(f))


def test_the_old_reader_and_the_line_parser_agree(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "ok", "prompt": "Say hello."}\n{"id": "bad", "prompt": "hi", "temperature": "0.7x"}\n')
    old = read_prompts(f, max_tokens=7)
    assert old.errors == [("bad", "p.jsonl:2: temperature: expected a number (got '0.7x')")]
    assert old.prompts[0] == parse_line('{"id": "ok", "prompt": "Say hello."}', 1, "p.jsonl", max_tokens=7)[1]


def test_a_child_gives_back_its_result_its_exception_or_one_line_when_it_dies():
    import os

    from longsweep.runtime.child import ChildDied, in_child
    assert in_child(divmod, 7, 2) == (3, 1)
    with pytest.raises(ValueError, match="invalid literal"):
        in_child(int, "x")
    with pytest.raises(ChildDied, match="_exit ended without an answer"):
        in_child(os._exit, 9)  # what an out-of-memory kill leaves: no answer


def test_a_big_files_scan_is_filed_and_a_second_run_does_not_scan_it_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGSWEEP_SCAN_CHILD_BYTES", "0")
    monkeypatch.setenv("LONGSWEEP_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"id": f"p{i}", "prompt": "x"}) + "\n" for i in range(1000)))
    first = stream_scan.scan(str(f))
    assert first.kept and Path(first.kept).parent == tmp_path / "cache"
    stream_scan._SCANS.clear()  # a new run

    def no_child(*a, **k):
        raise AssertionError("scanned again")

    monkeypatch.setattr(stream_scan, "in_child", no_child)
    again = stream_scan.scan(str(f))
    assert again.kept == first.kept and again.spans == first.spans and again.n_prompts == 1000
    assert (again.hashes == first.hashes).all()
    stream_scan._SCANS.clear()
    with open(f, "a") as fh:  # the file changed: scanned again, and its repeat refused as ever
        fh.write(json.dumps({"id": "p3", "prompt": "y"}) + "\n")
    monkeypatch.undo()
    monkeypatch.setenv("LONGSWEEP_SCAN_CHILD_BYTES", "0")
    monkeypatch.setenv("LONGSWEEP_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="repeated: 'p3'"):
        stream_scan.scan(str(f))
    monkeypatch.setenv("LONGSWEEP_CACHE_DIR", "off")
    f.write_text('{"id": "a", "prompt": "x"}\n')
    off = stream_scan.scan(str(f))
    assert off.kept and "cache" not in off.kept
