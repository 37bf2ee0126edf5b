"""runtime/nodes.py where no second node is needed: what the shared-path check skips, and the node watch on
one node (the multi-node cases are tests/reliability/test_node_loss.py)."""

from longsweep.runtime.nodes import MARKER, InFlight, NodeWatch, check_out_visible


def test_the_out_check_skips_an_object_store_uri_without_touching_ray():
    check_out_visible("s3://bucket/prefix/sweep")  # returns before Ray: nothing is connected in this test
    check_out_visible("gs://bucket/prefix/sweep")


def test_the_out_check_skips_a_single_node_ray_and_writes_no_marker(ray_local, tmp_path):
    out = tmp_path / "out"
    check_out_visible(str(out))
    assert not out.exists() and not list(tmp_path.rglob(f"{MARKER}*"))


def test_a_batch_in_flight_is_counted_and_no_line_comes_without_a_lost_node(ray_local):
    watch = NodeWatch("unit-model")
    marks = InFlight("unit-model")
    assert marks.prefix == f"{watch.prefix}{ray_local.get_runtime_context().get_node_id()}/"
    done, cut = marks.begin(), marks.begin()
    marks.end(done)
    from ray.experimental.internal_kv import _internal_kv_list
    assert [k.decode() for k in _internal_kv_list(watch.prefix, namespace="longsweep")] == [cut]
    assert watch.known and not watch.lost
    assert watch.finish() is None  # one node, never lost: no line
    assert _internal_kv_list(watch.prefix, namespace="longsweep") == []  # the count's keys are gone
