"""Matplotlib without a screen, shared by the report's plot writers."""

from __future__ import annotations

from pathlib import Path


def plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def save(fig, path: Path, written: list[Path]) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt().close(fig)
    written.append(path)
