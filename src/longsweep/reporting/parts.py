"""The building blocks of the HTML page: escaped cells, tables, foldable items, embedded PNG plots, and the
page's one stylesheet and one script (both inline: the page opens offline and loads nothing).

Every value that enters the page goes through ``esc`` (``html.escape`` with quotes) unless it is a ``Raw``
fragment that this package built itself from escaped parts.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any, Iterable


class Raw(str):
    """HTML this package built from escaped parts: inserted as it is."""


def esc(x: Any, nd: int = 2) -> str:
    """A value as page text: None and NaN as "-", floats with ``nd`` decimals, everything escaped."""
    if isinstance(x, Raw):
        return str(x)
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    if isinstance(x, (list, tuple)):
        return html.escape(", ".join(str(v) for v in x)) or "-"
    return html.escape(str(x), quote=True)


def table(header: Iterable[str], rows: Iterable[Iterable[Any]], *, cls: str = "") -> Raw:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    c = f' class="{esc(cls)}"' if cls else ""
    return Raw(f"<table{c}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def dict_table(rows: list[dict[str, Any]], cols: list[str], *, cls: str = "") -> Raw:
    """Rows of dicts as a table over ``cols`` (a missing key shows as "-")."""
    return table(cols, ([r.get(c) for c in cols] for r in rows), cls=cls)


def pre(text: Any, cls: str = "text") -> Raw:
    return Raw(f'<pre class="{cls}">{esc(text)}</pre>')


def section(anchor: str, title: str, body: str) -> Raw:
    return Raw(f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>')


def h3(title: str) -> Raw:
    return Raw(f"<h3>{esc(title)}</h3>")


def para(text: str, cls: str = "") -> Raw:
    c = f' class="{esc(cls)}"' if cls else ""
    return Raw(f"<p{c}>{esc(text)}</p>")


def details(summary: str, body: str, *, cls: str = "item", open_: bool = False) -> Raw:
    o = " open" if open_ else ""
    return Raw(f'<details class="{esc(cls)}"{o}><summary>{esc(summary)}</summary>{body}</details>')


def filter_box(target: str, what: str) -> Raw:
    """A search box; the page's script hides the items (and the rows of a table) right under ``#target``
    whose text does not contain what is typed; what is inside a shown item stays."""
    return Raw(f'<input type="search" class="filter" data-target="{esc(target)}" '
               f'placeholder="filter {esc(what)} (any text)" aria-label="filter {esc(what)}">')


def capped(items: list, max_items: int, noun: str) -> tuple[list, Raw]:
    """The first ``max_items`` items and the sentence that says how many more there are (empty when none)."""
    if len(items) <= max_items:
        return items, Raw("")
    rest = len(items) - max_items
    return items[:max_items], Raw(
        f'<p class="cap">Showing {max_items} of {len(items)} {esc(noun)} in full; {rest} more are counted in the '
        f"tables above but not shown (raise --html-max-items to show more).</p>")


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def images(paths: Iterable[Path]) -> Raw:
    """PNG files embedded in the page as data URIs."""
    tags = [f'<figure><img alt="{esc(Path(p).stem)}" src="{png_data_uri(p)}"><figcaption>{esc(Path(p).stem)}'
            f"</figcaption></figure>" for p in paths]
    return Raw(f'<div class="plots">{"".join(tags)}</div>' if tags else "")


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 1.2em 3em;color:#222}
header{border-bottom:1px solid #ccc;margin-bottom:1em}nav a{margin-right:1em}
h2{border-bottom:1px solid #ddd;padding-top:.6em}h3{margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:13px}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}
pre.text{white-space:pre-wrap;word-break:break-word;background:#fafafa;border:1px solid #eee;padding:.5em;
max-height:28em;overflow:auto;font-size:12.5px}
details.item{border:1px solid #ddd;border-radius:4px;margin:.4em 0;padding:.3em .6em}
details.item>summary{cursor:pointer;font-weight:600}
.side{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:.8em}
.side>div{border-left:3px solid #9bd;padding-left:.6em}
.turn{border-left:3px solid #bd9;padding-left:.6em;margin:.6em 0}
.err{color:#a00}.muted{color:#777}.cap{background:#fff6d6;padding:.4em .6em;border:1px solid #ec6}
input.filter{width:28em;padding:4px;margin:.4em 0}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plots figure{margin:0}.plots img{max-width:640px}
.hidden{display:none}
"""

SCRIPT = """
document.querySelectorAll('input.filter').forEach(function (box) {
  box.addEventListener('input', function () {
    var q = box.value.toLowerCase();
    var root = document.getElementById(box.dataset.target);
    if (!root) return;
    root.querySelectorAll(':scope > .item, :scope > table > tbody > tr').forEach(function (el) {
      el.classList.toggle('hidden', q !== '' && el.textContent.toLowerCase().indexOf(q) < 0);
    });
  });
});
"""


def page(title: str, nav: list[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><nav>{links}</nav></header>{body}"
            f"<script>{SCRIPT}</script></body></html>")
