"""Parse a review whose format is not known: JSON or SEA-style markdown, the better-filled wins.

Kept for callers that predate the formats (``longsweep.papers.formats``): with a known format,
call ``get_format(name).parse(text)``. Both give a ``ParsedReview`` (``ok``, ``issues``,
``fields()``, ``reviewers()``); values out of range and missing fields are named in ``issues``,
never invented.
"""

from __future__ import annotations

from longsweep.papers.formats import ParsedReview, get_format

__all__ = ["ParsedReview", "parse_review"]


def parse_review(text: str) -> ParsedReview:
    """Try the ``json`` and the ``sea`` parsers; the usable one with fewer issues wins."""
    cands = []
    for name in ("json", "sea"):
        p = get_format(name).parse(text)
        if p.ok or p.summary or p.rating is not None:
            cands.append(p)
    if not cands:
        return ParsedReview(issues=["no review found (neither JSON nor SEA markdown sections)"])
    return max(cands, key=lambda p: (p.ok, -len(p.issues)))
