"""Find the papers in a folder.

    PAPERS_DIR/<paper_id>/<version>.pdf | <version>.md   (images beside the .md)
    PAPERS_DIR/<paper_id>/meta.json                       optional: {"v2": {"context": "..."}} or {"v2": "..."}
    PAPERS_DIR/<name>.pdf                                 flat: each file its own paper, version v1

Paper ids and versions become keys and file names, so they are checked: nothing
with ``..``, a slash, NUL or other unsafe characters can write outside the results.
"""

from __future__ import annotations

from longsweep.errors import LayoutError  # noqa: F401

import json
import re
from dataclasses import dataclass
from pathlib import Path

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


@dataclass(frozen=True)
class PaperFile:
    paper_id: str
    version: str
    path: Path | None
    context: str | None = None
    error: str | None = None  # set when this entry cannot be used; it becomes an error row


def check_id(s: str, what: str = "paper id") -> str | None:
    """None when ``s`` is a safe id, else the reason."""
    if "\x00" in s or "/" in s or "\\" in s or ".." in s or not SAFE_ID.match(s):
        return f"unsafe {what} {s!r}: use letters, digits, '.', '_', '+', '-' (no '..', '/', NUL)"
    return None


def _meta(folder: Path) -> tuple[dict[str, str], str | None]:
    p = folder / "meta.json"
    if not p.exists():
        return {}, None
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return {}, f"{p.name}: not valid JSON ({e})"
    if not isinstance(raw, dict):
        return {}, f"{p.name}: expected an object mapping version -> context"
    out = {}
    for v, c in raw.items():
        if isinstance(c, dict):
            c = c.get("context") or c.get("flaw") or c.get("description")
        if c is not None:
            out[str(v)] = str(c)
    return out, None


def discover(papers_dir: str | Path, versions: list[str] | None = None) -> list[PaperFile]:
    """Every (paper, version) to review; requested versions that are missing are error entries."""
    root = Path(papers_dir)
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder")
    found: list[PaperFile] = []
    for p in sorted(root.iterdir(), key=lambda x: x.name):
        if p.is_file() and p.suffix.lower() in (".pdf", ".md") and p.name.lower() != "readme.md":
            pid = p.stem
            err = check_id(pid)
            found.append(PaperFile(pid, "v1", None if err else p, error=err))
        elif p.is_dir():
            pid = p.name
            err = check_id(pid)
            if err:
                found.append(PaperFile(pid, "v1", None, error=err))
                continue
            meta, meta_err = _meta(p)
            files = {}
            for f in sorted(p.iterdir()):
                if f.is_file() and f.suffix.lower() in (".pdf", ".md"):
                    if f.stem in files:
                        found.append(PaperFile(pid, f.stem, None, error=f"both {f.stem}.pdf and {f.stem}.md exist"))
                        continue
                    files[f.stem] = f
            wanted = versions or sorted(files)
            for v in wanted:
                verr = check_id(v, "version")
                if verr or meta_err:
                    found.append(PaperFile(pid, v, None, error=verr or meta_err))
                elif v not in files:
                    found.append(PaperFile(pid, v, None, error=f"version {v} is missing in {pid}/"))
                else:
                    found.append(PaperFile(pid, v, files[v], context=meta.get(v)))
    if versions:
        found = [f for f in found if f.version in versions]
    seen: dict[tuple[str, str], int] = {}
    out = []
    for f in found:
        k = (f.paper_id, f.version)
        if k in seen:  # e.g. x.pdf and x/ both present, or x.pdf and x.md flat
            out.append(PaperFile(f.paper_id, f.version + f"#dup{seen[k]}", None,
                                 error=f"duplicate paper id {f.paper_id!r} version {f.version!r}"))
            seen[k] += 1
            continue
        seen[k] = 1
        out.append(f)
    if not out:
        raise LayoutError(f"{root}: no papers (.pdf or .md files, or folders of them)")
    return out
