"""Error limit: stop a sweep that is failing instead of burning hours on error rows.

``--max-errors N`` stops when more than N items of this run are errors;
``--max-error-rate F`` stops when errors / rows of this run exceed F, judged once
``min_rows`` rows are in (or every row, for a smaller sweep), so two early
failures out of three do not stop a 10,000-item sweep. Rows already written stay
written; a rerun with ``--resume`` goes on from there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorLimit:
    max_errors: int | None = None
    max_error_rate: float | None = None
    min_rows: int = 20

    def __post_init__(self) -> None:
        if self.max_errors is not None and self.max_errors < 0:
            raise ValueError(f"--max-errors must be >= 0, got {self.max_errors}")
        if self.max_error_rate is not None and not 0 <= self.max_error_rate < 1:
            raise ValueError(f"--max-error-rate must be in [0, 1), got {self.max_error_rate}")

    def exceeded(self, *, rows: int, errors: int, total: int) -> str | None:
        """Why the sweep must stop now, or None. ``rows``/``errors`` count this run only."""
        if self.max_errors is not None and errors > self.max_errors:
            return f"{errors} error rows > --max-errors {self.max_errors}"
        if self.max_error_rate is not None and rows >= min(self.min_rows, max(total, 1)) and rows > 0:
            rate = errors / rows
            if rate > self.max_error_rate:
                return f"error rate {rate:.2f} ({errors} of {rows} rows) > --max-error-rate {self.max_error_rate}"
        return None
