"""Fixtures of the compare tests: a sweep folder of synthetic review rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_data import synthetic, write_table


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    write_table(root / "reviews", synthetic())
    return root
