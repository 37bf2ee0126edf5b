"""Find the papers in a folder.

    PAPERS_DIR/<paper_id>/<version>.pdf | <version>.md   (images beside the .md)
    PAPERS_DIR/<paper_id>/meta.json                       optional: {"v2": {"context": "..."}} or {"v2": "..."}
    PAPERS_DIR/<name>.pdf                                 flat: each file its own paper, version v1

Paper ids and versions become keys and file names, so they are checked: nothing
with ``..``, a slash, NUL or other unsafe characters can write outside the results.
"""

from __future__ import annotations

from longsweep.errors import LayoutError  # noqa: F401

import errno
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_ID = 200  # ids become file names (export: <paper_id>/<version>_review_run<k>.json)
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class PaperFile:
    paper_id: str
    version: str
    path: Path | None
    context: str | None = None
    error: str | None = None  # set when this entry cannot be used; it becomes an error row


def check_id(s: str, what: str = "paper id") -> str | None:
    """None when ``s`` is a safe id, else the reason (one line; a long id is shown cut)."""
    if len(s) > MAX_ID:
        return f"{what} too long: {len(s)} characters, at most {MAX_ID} ({s[:40]!r}...)"
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


PAPER_SUFFIXES = (".pdf", ".md")


def _kind(p: Path) -> tuple[str, str | None]:
    """("file" | "dir" | "bad", why): what an entry is once symlinks are followed."""
    try:
        st = p.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "bad", f"{p.name}: a symlink loop"
        if p.is_symlink():
            return "bad", f"{p.name}: a broken symlink (to {os.readlink(p)})"
        return "bad", f"{p.name}: cannot be read ({e.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "dir", None
    if stat.S_ISREG(st.st_mode):
        return "file", None
    return "bad", f"{p.name}: not a regular file"


def _is_paper_name(p: Path) -> bool:
    return p.suffix.lower() in PAPER_SUFFIXES and p.name.lower() != "readme.md" and not p.name.startswith(".")


def _folder(p: Path, versions: list[str] | None) -> list[PaperFile]:
    """The versions of one paper folder; entries named like a version that are not files are error rows."""
    pid = p.name
    err = check_id(pid)
    if err:
        return [PaperFile(pid, "v1", None, error=err)]
    meta, meta_err = _meta(p)
    files: dict[str, Path] = {}
    out: list[PaperFile] = []
    for f in sorted(p.iterdir()):
        if not _is_paper_name(f):
            continue  # images beside a markdown paper, meta.json, notes: the paper's assets
        kind, why = _kind(f)
        if kind != "file":
            out.append(PaperFile(pid, f.stem, None, error=why or f"{pid}/{f.name} is a folder, not a file"))
        elif f.stem in files:
            out.append(PaperFile(pid, f.stem, None, error=f"both {f.stem}.pdf and {f.stem}.md exist"))
        else:
            files[f.stem] = f
    bad = {pf.version for pf in out}
    wanted = versions or sorted(files)
    for v in wanted:
        verr = check_id(v, "version")
        if verr or meta_err:
            out.append(PaperFile(pid, v, None, error=verr or meta_err))
        elif v in files:
            out.append(PaperFile(pid, v, files[v], context=meta.get(v)))
        elif v not in bad:
            out.append(PaperFile(pid, v, None, error=f"version {v} is missing in {pid}/"))
    if not out:
        out.append(PaperFile(pid, "v1", None, error=f"{pid}/: a folder with no .pdf or .md paper inside"))
    return out


def discover(papers_dir: str | Path, versions: list[str] | None = None,
             skipped: list[tuple[str, str]] | None = None) -> list[PaperFile]:
    """Every (paper, version) to review; requested versions that are missing are error entries.

    Every entry of the folder is a paper (or an error row: a symlink loop, a broken symlink, a folder named
    ``x.pdf`` with no paper inside) or a listed skip (``skipped`` gets ``(name, reason)``; a warning names
    them): README.md, hidden entries, files that are neither .pdf nor .md."""
    root = Path(papers_dir)
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder")
    found: list[PaperFile] = []
    skips: list[tuple[str, str]] = []
    for p in sorted(root.iterdir(), key=lambda x: x.name):
        if p.name.startswith("."):
            skips.append((p.name, "hidden"))
            continue
        kind, why = _kind(p)
        if kind == "dir":
            found += _folder(p, versions)
        elif p.name.lower() == "readme.md":
            skips.append((p.name, "the folder's README"))
        elif not _is_paper_name(p):
            skips.append((p.name, "not a .pdf or .md file" if kind == "file" else (why or "not a file")))
        else:
            err = check_id(p.stem) or why
            found.append(PaperFile(p.stem, "v1", None if err else p, error=err))
    if versions:
        skips += [(f"{f.paper_id} (version {f.version})", "not among --versions") for f in found
                  if f.version not in versions]
        found = [f for f in found if f.version in versions]
    out: list[PaperFile] = []
    seen: dict[tuple[str, str], int] = {}
    for f in found:
        k = (f.paper_id, f.version)
        if k in seen:  # e.g. x.pdf and x/ both present, or x.pdf and x.md flat
            out.append(PaperFile(f.paper_id, f.version + f"#dup{seen[k]}", None,
                                 error=f"duplicate paper id {f.paper_id!r} version {f.version!r}"))
            seen[k] += 1
            continue
        seen[k] = 1
        out.append(f)
    if skips:
        logger.warning("%s: %d entr%s skipped: %s", root, len(skips), "y" if len(skips) == 1 else "ies",
                       "; ".join(f"{n} ({why})" for n, why in skips))
        if skipped is not None:
            skipped.extend(skips)
    if not out:
        raise LayoutError(f"{root}: no papers (.pdf or .md files, or folders of them)"
                          + (f"; skipped: {', '.join(n for n, _ in skips)}" if skips else ""))
    return out
