"""PDF or markdown -> Document: markdown text, figures with captions, hidden-text findings.

One pass of ``page.get_text("dict")`` per page (no image payloads: ~300 pages/s
on one core here, against 1.5-3.6 for pymupdf4llm). Headings come from font size
and weight, reading order from a column split of the text blocks, and every span
is checked for text a human reader cannot see (white, under 2 pt, off the page,
transparent, or under an image drawn on top of it).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

from longsweep.papers.document import Document, Figure, HiddenSpan, IngestError

logger = logging.getLogger(__name__)

CAPTION_RE = re.compile(r"^\s*(Figure|Fig\.|FIGURE)\s*\d+", re.I)
WHITE_MIN = 235  # every channel at or above this on a white page is unreadable


def _pymupdf():
    import pymupdf
    return pymupdf


def _rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 255, (color >> 8) & 255, color & 255


def _hidden_reason(span: dict, page_rect) -> str | None:
    """Why a span cannot be seen, from the span alone; ``white_text`` is confirmed later
    against what is painted beneath it (white on a coloured box is visible)."""
    x0, y0, x1, y1 = span["bbox"]
    if span.get("alpha", 255) == 0:
        return "invisible"
    if span["size"] < 2:
        return "tiny_font"
    if x1 <= page_rect.x0 or x0 >= page_rect.x1 or y1 <= page_rect.y0 or y0 >= page_rect.y1:
        return "off_page"
    if min(_rgb(span["color"])) >= WHITE_MIN:
        return "white_text"
    return None


class _PagePaint:
    """What is painted on a page, from its draw log, read only when needed."""

    def __init__(self, page):
        self.covers, self.fills, self.images = [], [], []
        texts = []
        for kind, rect in page.get_bboxlog():
            if "text" in kind:
                texts.append(rect)
                continue
            if kind.startswith("fill") or "image" in kind:
                self.fills.append(rect)
            if "image" in kind:
                self.images.append((0, rect))
            if "image" in kind and any(_inside(((t[0] + t[2]) / 2, (t[1] + t[3]) / 2), rect) for t in texts):
                self.covers.append(rect)  # an image drawn over text that was already there

    def covered(self, bbox) -> bool:
        c = ((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
        return any(_inside(c, r) for r in self.covers)

    def on_fill(self, bbox) -> bool:
        c = ((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
        return any(_inside(c, r) for r in self.fills)


def _inside(pt, r) -> bool:
    return r[0] <= pt[0] <= r[2] and r[1] <= pt[1] <= r[3]


def _order_blocks(blocks: list[dict], width: float) -> list[dict]:
    """Reading order for one- and two-column pages: full-width blocks cut the page into
    bands; inside a band the left column is read before the right one."""
    mid = width / 2
    full = lambda b: (b["bbox"][2] - b["bbox"][0]) > 0.6 * width or (b["bbox"][0] < mid - 20 and b["bbox"][2] > mid + 20)
    out, band = [], []

    def flush():
        band.sort(key=lambda b: (0 if (b["bbox"][0] + b["bbox"][2]) / 2 < mid else 1, b["bbox"][1], b["bbox"][0]))
        out.extend(band)
        band.clear()

    for b in sorted(blocks, key=lambda b: (b["bbox"][1], b["bbox"][0])):
        if full(b):
            flush()
            out.append(b)
        else:
            band.append(b)
    flush()
    return out


def _join_lines(lines: list[str]) -> str:
    text = ""
    for ln in lines:
        ln = ln.strip()
        if not ln:
            continue
        if text.endswith("-") and ln[:1].islower():
            text = text[:-1] + ln
        else:
            text = f"{text} {ln}" if text else ln
    return text


def _body_size(pages_spans: Counter) -> float:
    return pages_spans.most_common(1)[0][0] if pages_spans else 10.0


def ingest_pdf(path: str | Path, *, images_dir: str | Path | None = None, max_figures: int = 8,
               keep_hidden: bool = False, tables: bool = False, figure_images: bool = False,
               accept_repaired: bool = False) -> Document:
    """Convert a PDF; raises IngestError(kind) for files that are not readable papers.

    A PDF that PyMuPDF had to repair (``Document.is_repaired``: cut short, a broken cross-reference table)
    opens with whatever text could be recovered, often a fragment: it is ``damaged_pdf`` unless
    ``accept_repaired``, and then the Document says ``repaired`` (the row's ``pdf_repaired``).

    ``figure_images=True`` keeps each raster figure as PNG bytes (``Figure.data``, at most
    ``MAX_IMAGE_SIDE`` pixels a side) for models that take images.

    ``tables=True`` turns the tables PyMuPDF finds into markdown tables; it costs
    about 1.4 pages/s here (``page.find_tables``), so it is off by default."""
    pymupdf = _pymupdf()
    path = Path(path)
    data = _read_bytes(path)
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise IngestError("not_pdf", f"{path.name}: not a PDF file (no %PDF header)")
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as e:  # noqa: BLE001 - pymupdf raises several types for broken files
        raise IngestError("corrupt_pdf", f"{path.name}: cannot open PDF ({e})") from None
    try:
        if doc.needs_pass:
            raise IngestError("encrypted", f"{path.name}: the PDF is encrypted (password needed)")
        if doc.page_count == 0:
            raise IngestError("corrupt_pdf", f"{path.name}: the PDF has no pages")
        _check_repaired(doc, path, accept_repaired)
        out = _convert(doc, path, images_dir=images_dir, max_figures=max_figures, keep_hidden=keep_hidden,
                       tables=tables, figure_images=figure_images)
        _check_repaired(doc, path, accept_repaired)  # pages can be repaired as they are read
        out.repaired = bool(doc.is_repaired)  # type: ignore[attr-defined]
        return out
    except IngestError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged page stream is this paper's error only
        raise IngestError("corrupt_pdf", f"{path.name}: cannot read PDF ({type(e).__name__}: {e})") from None
    finally:
        doc.close()


def _check_repaired(doc, path: Path, accept: bool) -> None:
    if doc.is_repaired and not accept:
        raise IngestError("damaged_pdf", f"{path.name}: the PDF is damaged (cut short or broken) and PyMuPDF had "
                          f"to repair it, so its text may be a fragment ({doc.page_count} pages recovered); "
                          f"--accept-repaired-pdfs reviews it anyway, flagged pdf_repaired")


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IngestError("unreadable", f"{path.name}: cannot read ({e})") from None
    if not data:
        raise IngestError("empty_file", f"{path.name}: the file is empty (0 bytes)")
    return data


def _tables(page, blocks: list[dict]) -> list[dict]:
    """Replace the text blocks inside each table PyMuPDF finds by one markdown block."""
    found = page.find_tables().tables
    if not found:
        return blocks
    rects = [t.bbox for t in found]
    inside = lambda b: any(_inside(((b["bbox"][0] + b["bbox"][2]) / 2, (b["bbox"][1] + b["bbox"][3]) / 2), r)
                           for r in rects)
    return [b for b in blocks if not inside(b)] + [{"bbox": t.bbox, "md": t.to_markdown().strip()} for t in found]


def _convert(doc, path: Path, *, images_dir, max_figures: int, keep_hidden: bool, tables: bool = False,
             figure_images: bool = False) -> Document:
    pymupdf = _pymupdf()
    flags = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES
    pages = []
    sizes: Counter = Counter()
    hidden: list[HiddenSpan] = []
    image_pages: list[tuple[int, list]] = []
    for pno, page in enumerate(doc, 1):
        xrefs = [im[0] for im in page.get_images()]
        paint = _PagePaint(page) if xrefs else None
        if paint is not None:
            rects = paint.images
            if images_dir or figure_images:  # xrefs are needed only for the image bytes (costly: hashes pixmaps)
                rects = [(x, r) for x in xrefs for r in page.get_image_rects(x)]
            image_pages.append((pno, rects))
        blocks = _page_blocks(page, pno, page.get_text("dict", flags=flags), paint, sizes, hidden, keep_hidden)
        if tables:
            blocks = _tables(page, blocks)
        pages.append((pno, _order_blocks(blocks, page.rect.width)))
    markdown, starts, captions = _assemble(pages, _body_size(sizes))
    if len(markdown.strip()) < 20:
        raise IngestError("no_text", f"{path.name}: no extractable text ({doc.page_count} pages; scanned or image-only PDF)")
    figures = _figures(doc, image_pages, captions, images_dir, max_figures, path.stem, figure_images)
    title = (doc.metadata or {}).get("title") or _first_heading(markdown)
    return Document(source=str(path), markdown=markdown, title=title.strip(), n_pages=doc.page_count,
                    page_starts=starts, figures=figures, hidden=hidden)


def _page_blocks(page, pno: int, d: dict, paint, sizes: Counter, hidden: list[HiddenSpan],
                 keep_hidden: bool) -> list[dict]:
    """One page's text blocks (``d``: pymupdf's text dict), hidden spans recorded in ``hidden`` (and dropped
    unless ``keep_hidden``), the visible text's font sizes counted into ``sizes``."""
    page_rect = page.rect
    blocks = []
    for b in d["blocks"]:
        lines = []
        for ln in b.get("lines", ()):
            spans = []
            for s in ln["spans"]:
                why = _hidden_reason(s, page_rect) if s["text"].strip() else None
                if why == "white_text" or (why is None and paint is not None):
                    paint = paint or _PagePaint(page)
                    if why == "white_text" and paint.on_fill(s["bbox"]):
                        why = None
                    elif why is None and paint.covered(s["bbox"]):
                        why = "covered_by_image"
                if why:
                    hidden.append(HiddenSpan(pno, why, s["text"]))
                    if not keep_hidden:
                        continue
                spans.append(s)
                if s["text"].strip():
                    sizes[round(s["size"], 1)] += len(s["text"])
            if spans:
                lines.append(spans)
        if lines:
            blocks.append({"bbox": b["bbox"], "lines": lines})
    return blocks


def _assemble(pages: list[tuple[int, list]], body: float) -> tuple[str, list[int], list[tuple[int, str]]]:
    """The pages' blocks as one markdown text, the offset where each page starts, and the captions found."""
    parts, starts, pos = [], [], 0
    captions: list[tuple[int, str]] = []
    for pno, blocks in pages:
        starts.append(pos)
        for b in blocks:
            md = _block_markdown(b, body)
            if not md:
                continue
            if CAPTION_RE.match(md):
                captions.append((pno, md[:300]))
            parts.append(md)
            pos += len(md) + 2
    return "\n\n".join(parts), starts, captions


# Control characters are glyphs a font did not map (math-extension brackets print as \x10-\x15):
# no reader sees them, and llama.cpp drops those its vocabulary cannot spell.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _block_markdown(block: dict, body: float) -> str:
    if "md" in block:
        return _CONTROL.sub("", block["md"])
    out, para = [], []
    for i, spans in enumerate(block["lines"]):
        text = _CONTROL.sub("", "".join(s["text"] for s in spans)).strip()
        if not text:
            continue
        big = max(s["size"] for s in spans if s["text"].strip()) if any(s["text"].strip() for s in spans) else body
        bold = all((s["flags"] & 16) or "Bold" in s["font"] for s in spans if s["text"].strip())
        heading = (len(text) < 120 and not text.endswith((".", ",", ";")) and i == len(para) and
                   (big >= body + 1.0 or (bold and len(text) < 80 and not para)))
        if heading and not para:
            out.append(f"## {text}")
            continue
        para.append(text)
    if para:
        out.append(_join_lines(para))
    return "\n\n".join(out)


def _first_heading(md: str) -> str:
    for ln in md.splitlines():
        if ln.startswith("## "):
            return ln[3:]
    return md.strip().splitlines()[0][:200] if md.strip() else ""


def _figures(doc, image_pages, captions, images_dir, max_figures, stem, figure_images=False) -> list[Figure]:
    """Raster figures with the nearest caption on their page, plus captions of vector figures;
    captioned and largest first, capped at ``max_figures``."""
    figs: list[Figure] = []
    used = set()
    for pno, infos in image_pages:
        page_caps = [c for c in captions if c[0] == pno]
        for xref, rect in infos:
            x0, y0, x1, y1 = rect
            area = max(0.0, (x1 - x0) * (y1 - y0))
            if area < 2500:  # icons, logos
                continue
            cap = next((c[1] for c in page_caps if c not in used), "")
            if cap:
                used.add(next(c for c in page_caps if c[1] == cap))
            figs.append(Figure(page=pno, caption=cap, area=area, path=None, xref=xref))
    figs += [Figure(page=c[0], caption=c[1], area=0.0) for c in captions if c not in used]
    figs.sort(key=lambda f: (not f.caption, -f.area))
    figs = figs[:max_figures]
    if images_dir:
        out = Path(images_dir)
        out.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(figs):
            if f.xref:
                img = doc.extract_image(f.xref)
                if img:
                    p = out / f"{stem}_fig{i + 1}_p{f.page}.{img['ext']}"
                    p.write_bytes(img["image"])
                    f.path = str(p)
    if figure_images:
        for f in figs:
            if f.xref:
                f.data = _png(doc, f.xref)
    return figs


MAX_IMAGE_SIDE = 1024


def _png(doc, xref: int) -> bytes | None:
    """A PDF image as RGB PNG, halved until its longer side is at most ``MAX_IMAGE_SIDE``."""
    return _to_png(lambda pm: pm.Pixmap(doc, xref), f"xref {xref}")


def _png_file(path: Path) -> bytes | None:
    return _to_png(lambda pm: pm.Pixmap(str(path)), path.name)


def _to_png(open_pixmap, what: str) -> bytes | None:
    pymupdf = _pymupdf()
    try:
        pix = open_pixmap(pymupdf)
        if pix.alpha:
            pix = pymupdf.Pixmap(pix, 0)
        if pix.colorspace is None or pix.colorspace.n != 3:
            pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
        while max(pix.width, pix.height) > MAX_IMAGE_SIDE:
            pix.shrink(1)
        return pix.tobytes("png")
    except Exception as e:  # noqa: BLE001 - an unreadable image is a missing figure, not a failed paper
        logger.warning("figure image %s could not be converted: %s", what, e)
        return None


def ingest_markdown(path: str | Path, *, max_figures: int = 8, figure_images: bool = False) -> Document:
    """Markdown input as is; images beside it (``![caption](file)``) become figures."""
    path = Path(path)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IngestError("bad_utf8", f"{path.name}: not valid UTF-8 at byte {e.start}") from None
    if not text.strip():
        raise IngestError("no_text", f"{path.name}: the markdown file has no text")
    figs = []
    for m in re.finditer(r"!\[([^\]]*)\]\(([^)]+)\)", text):
        img = (path.parent / m.group(2)).resolve()
        inside = img.is_relative_to(path.parent.resolve())  # a link out of the paper's folder is not read
        fig = Figure(page=None, caption=m.group(1), area=0.0, path=str(img) if inside and img.is_file() else None)
        if figure_images and fig.path and len(figs) < max_figures:
            fig.data = _png_file(img)
        figs.append(fig)
    title = _first_heading(text.replace("# ", "## ", 1) if text.startswith("# ") else text)
    return Document(source=str(path), markdown=text, title=title, n_pages=0, figures=figs[:max_figures])


def ingest(path: str | Path, **kw) -> Document:
    path = Path(path)
    if path.suffix.lower() == ".md":
        for k in ("images_dir", "keep_hidden", "tables", "accept_repaired"):
            kw.pop(k, None)
        return ingest_markdown(path, **kw)
    return ingest_pdf(path, **kw)
