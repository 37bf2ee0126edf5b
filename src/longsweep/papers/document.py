"""The Document: what ingest produces and fit consumes."""

from __future__ import annotations

from longsweep.errors import IngestError  # noqa: F401

from dataclasses import dataclass, field


@dataclass
class Figure:
    page: int | None
    caption: str
    area: float = 0.0
    path: str | None = None  # saved image file, when an images folder was given
    xref: int = 0  # the PDF image object, known only when images were asked for
    data: bytes | None = None  # PNG bytes, when ingest was asked for figure images


@dataclass
class HiddenSpan:
    page: int
    reason: str  # "white_text" | "tiny_font" | "off_page" | "covered_by_image" | "invisible"
    text: str


@dataclass
class Document:
    """A paper as markdown, with page offsets into ``markdown`` when it came from a PDF."""

    source: str
    markdown: str
    title: str = ""
    n_pages: int = 0
    page_starts: list[int] = field(default_factory=list)  # char offset of each page (1-based page = index+1)
    figures: list[Figure] = field(default_factory=list)
    hidden: list[HiddenSpan] = field(default_factory=list)
    repaired: bool = False  # PyMuPDF had to repair the file: the text may be a fragment

    @property
    def chars(self) -> int:
        return len(self.markdown)

    @property
    def hidden_chars(self) -> int:
        return sum(len(h.text) for h in self.hidden)

    def page_of(self, offset: int) -> int | None:
        """1-based page number holding character ``offset``; None for markdown input."""
        if not self.page_starts:
            return None
        lo, hi = 0, len(self.page_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.page_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1
