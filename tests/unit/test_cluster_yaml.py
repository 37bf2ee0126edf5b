import yaml

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_cluster_yaml_validates_against_rays_autoscaler_schema():
    from ray.autoscaler._private.util import validate_config
    cfg = yaml.safe_load((PROJECT_ROOT / "cluster.yaml").read_text())
    validate_config(cfg)  # raises on any schema error
    types = cfg["available_node_types"]
    assert types["gpu_1x"]["resources"]["GPU"] == 1 and types["gpu_4x"]["resources"]["GPU"] == 4
    assert cfg["idle_timeout_minutes"] > 0 and all("max_workers" in t for t in types.values())


def test_schema_check_can_fail():
    import pytest
    from ray.autoscaler._private.util import validate_config
    cfg = yaml.safe_load((PROJECT_ROOT / "cluster.yaml").read_text())
    cfg["available_node_types"]["gpu_1x"]["not_a_field"] = 1
    with pytest.raises(Exception):
        validate_config(cfg)
