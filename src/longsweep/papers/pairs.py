"""Paper pairs as the review seed keeps them: a CSV with one paper per row and a folder per version.

    paperid,v1_folder_path,latest_folder_path,flaw_descriptions,title,...
    abc123,v1/abc123_2310_01234v1,latest/abc123_2310_01234,"['The baseline is not tuned.']",...

- Versions are the columns named ``<version>_folder_path`` (``v1``, ``latest``), or the columns given as
  ``{version: column}``. The id column is ``paperid`` (or ``paper_id``).
- A relative folder path resolves against one folder, the root: the CSV's folder, or ``papers_root``
  (``--papers-root``; the seed writes the paths relative to the folder its script ran in, two above the
  CSV). Nothing else is searched. A path that leads out of the root (``..``, an absolute path elsewhere,
  a symlink pointing out) is an error row unless ``allow_outside_root`` (``--allow-outside-root``); the
  root itself (``.``) is never one version's folder. Each entry's ``path`` is the file it read, resolved.
- In a version folder the paper is ``structured_paper_output/paper.md`` (a PDF converter's output), else a
  ``paper.md`` in any subfolder, else the first ``*.md``, else the first ``*.pdf`` (shallowest first, then
  by name); a path naming a ``.md`` or ``.pdf`` file is that file. Figures resolve relative to the markdown.
- ``flaw_descriptions`` is a JSON list or a Python-literal list of strings (the seed writes ``repr`` of a
  list); an empty cell is no known flaw. The row's other columns are its metadata.

A row that cannot be used (no id, an unsafe id, a repeated id, a folder that is not there or outside the
root, a flaw list that cannot be read, a row with more fields than the header) becomes an error entry for
every version of the row, naming the CSV row, its line and the column: nothing is dropped. A row without a
usable id gets the placeholder ``#row-N``, which no real id can equal (an id starts with a letter or
digit). A file that cannot be read as a whole (missing, not UTF-8, no version column) is an ``InputError``:
refused before anything runs.

Papers in a folder (``papers/layout.py``) get their known flaws from ``<paper>/meta.json``'s ``flaws``.
"""

from __future__ import annotations

import ast
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from longsweep.errors import InputError
from longsweep.papers.layout import PaperFile, check_id

FOLDER_SUFFIX = "_folder_path"
ID_COLUMNS = ("paperid", "paper_id")
FLAW_COLUMN = "flaw_descriptions"
FIRST_CHOICE = Path("structured_paper_output") / "paper.md"


@dataclass(frozen=True)
class PaperInput(PaperFile):
    """A (paper, version) to review with what is known of it: its known flaws and where it came from."""

    flaws: tuple[str, ...] = ()
    row: int | None = None  # the CSV's data row (1-based), None for a papers folder
    meta: tuple[tuple[str, str], ...] = ()  # the CSV row's other columns

    def meta_dict(self) -> dict:
        """What goes into the work item's ``meta``: the known flaws, the CSV row, its metadata."""
        return {"known_flaws": list(self.flaws), "csv_row": self.row, "metadata": dict(self.meta)}


def parse_flaw_list(text: str | None) -> list[str]:
    """A JSON list or a Python-literal list of strings; an empty cell is ``[]``. Raises ValueError."""
    text = (text or "").strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValueError(f"neither a JSON list nor a Python list: {text[:60]!r}") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {type(value).__name__}: {text[:60]!r}")
    out = [v.strip() for v in value]
    if any(not v for v in out):
        raise ValueError("an empty flaw description")
    return out


def flaws_text(flaws: list[str] | tuple[str, ...]) -> str:
    """The known flaws as the reviewer reads them (``--flaw-context``)."""
    return "Known flaws reported for this paper:\n" + "\n".join(f"{i}. {f}" for i, f in enumerate(flaws, 1))


def find_paper_file(folder: Path) -> Path | None:
    """The paper in a version folder (see the module's docstring), or None."""
    if folder.is_file():
        return folder if folder.suffix.lower() in (".md", ".pdf") else None
    if (folder / FIRST_CHOICE).is_file():
        return folder / FIRST_CHOICE

    def ranked(pattern: str) -> list[Path]:
        found = [p for p in folder.rglob(pattern) if p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
        return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), str(p.relative_to(folder))))

    for pattern in ("paper.md", "*.md", "*.pdf"):
        hits = [p for p in ranked(pattern) if p.name.lower() != "readme.md"]
        if hits:
            return hits[0]
    return None


def _inside(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def _locate(raw: str, root: Path, allow_outside: bool) -> tuple[Path | None, str | None]:
    """(the version folder or file, resolved; None) or (None, why): see the module's docstring."""
    p = Path(raw).expanduser()
    full = p if p.is_absolute() else root / p
    if not full.exists():
        return None, f"{raw!r} not found (relative paths resolve against {root}; --papers-root DIR for another)"
    real = full.resolve()
    if real == root:
        return None, f"{raw!r} is the root folder itself ({root}), not one version's folder"
    if not allow_outside and not _inside(real, root):
        return None, f"{raw!r} leads outside {root} (to {real}); --allow-outside-root reads it"
    return real, None


@dataclass
class PairsFile:
    """The CSV read as a whole: its header checked, its rows as dicts with their line numbers."""

    path: Path
    id_column: str
    columns: dict[str, str]  # version -> folder column
    has_flaws: bool
    rows: list[tuple[int, int, dict]]  # (data row, last line, cells)
    root: Path | None = None  # where relative folder paths resolve (resolved): papers_root, else the CSV's folder
    allow_outside: bool = False  # folders outside the root are read too


def version_columns(header: list[str], given: dict[str, str] | None, versions: list[str] | None,
                    path: Path) -> dict[str, str]:
    """{version: column}: the ``<version>_folder_path`` columns (or ``given``), kept to ``versions``."""
    cols = dict(given) if given else {c[:-len(FOLDER_SUFFIX)]: c for c in header
                                      if c.endswith(FOLDER_SUFFIX) and len(c) > len(FOLDER_SUFFIX)}
    missing = [c for c in cols.values() if c not in header]
    if missing:
        raise InputError(f"{path}: no column {', '.join(missing)} (columns: {', '.join(header)})")
    if not cols:
        raise InputError(f"{path}: no version columns: expected <version>{FOLDER_SUFFIX} columns "
                         f"(v1{FOLDER_SUFFIX}, latest{FOLDER_SUFFIX}) or --version-columns NAME=COLUMN,...")
    for v in cols:
        err = check_id(v, "version")
        if err:
            raise InputError(f"{path}: {err}")
    if versions:
        unknown = [v for v in versions if v not in cols]
        if unknown:
            raise InputError(f"{path}: --versions {','.join(unknown)}: not among the CSV's versions "
                             f"({', '.join(cols)})")
        cols = {v: cols[v] for v in versions}
    return cols


def read_pairs_file(csv_path: str | Path, *, columns: dict[str, str] | None = None,
                    versions: list[str] | None = None, root: str | Path | None = None,
                    allow_outside_root: bool = False) -> PairsFile:
    """Read and check the CSV as a whole (and ``root``, when given); raises ``InputError`` naming the file."""
    path = Path(csv_path)
    if root is not None and not Path(root).expanduser().is_dir():
        raise InputError(f"--papers-root {root}: not a folder")
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))  # flaw lists and abstracts can be long
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = []
            for i, cells in enumerate(reader, 1):
                rows.append((i, reader.line_num, cells))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder, not a CSV file") from None
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        raise InputError(f"{path}: not a readable CSV ({e})") from None
    id_col = next((c for c in ID_COLUMNS if c in header), None)
    if id_col is None:
        raise InputError(f"{path}: no paperid column (columns: {', '.join(header) or 'none'})")
    if not rows:
        raise InputError(f"{path}: no rows under the header")
    cols = version_columns(header, columns, versions, path)
    base = Path(root).expanduser() if root is not None else path.parent
    return PairsFile(path, id_col, cols, FLAW_COLUMN in header, rows, base.resolve(), allow_outside_root)


def _row_entries(pf: PairsFile, n: int, line: int, cells: dict, seen: dict[str, int]) -> list[PaperInput]:
    where = f"{pf.path.name} row {n} (line {line})"
    rid = f"#row-{n}"  # not a valid id: no real paperid can equal it
    if cells.get(None):  # DictReader puts the fields past the header under None
        return _errors(rid, pf, n, f"{where}: {len(cells[None])} more field(s) than the header's columns")
    pid = (cells.get(pf.id_column) or "").strip()
    if not pid:
        return _errors(rid, pf, n, f"{where}: column {pf.id_column} is empty")
    bad = check_id(pid)
    if bad:
        return _errors(rid, pf, n, f"{where}: column {pf.id_column}: {bad}")
    if pid in seen:
        return _errors(pid, pf, n, f"{where}: column {pf.id_column}: {pid!r} repeats row {seen[pid]}",
                       suffix=f"#row{n}")
    seen[pid] = n
    try:
        flaws = parse_flaw_list(cells.get(FLAW_COLUMN)) if pf.has_flaws else []
    except ValueError as e:
        return _errors(pid, pf, n, f"{where}: column {FLAW_COLUMN}: {e}")
    skip = {pf.id_column, FLAW_COLUMN, *pf.columns.values()}
    meta = tuple((k, v) for k, v in cells.items() if k is not None and k not in skip and v not in (None, ""))
    kw = dict(flaws=tuple(flaws), row=n, meta=meta)
    out = []
    for version, col in pf.columns.items():
        paper, why = _version_paper(pf, (cells.get(col) or "").strip())
        out.append(PaperInput(pid, version, paper, error=f"{where}: column {col}{why}" if why else None, **kw))
    return out


def _version_paper(pf: PairsFile, raw: str) -> tuple[Path | None, str | None]:
    """The paper file one cell names (resolved), or None and the reason (after the column's name)."""
    if not raw:
        return None, " is empty"
    root = pf.root or pf.path.resolve().parent
    folder, why = _locate(raw, root, pf.allow_outside)
    if folder is None:
        return None, f": {why}"
    paper = find_paper_file(folder)
    if paper is None:
        return None, f": no paper in {raw!r} (paper.md, *.md or *.pdf)"
    real = paper.resolve()
    if not pf.allow_outside and not _inside(real, root):
        return None, f": the paper in {raw!r} leads outside {root} (to {real}); --allow-outside-root reads it"
    return real, None


def _errors(pid: str, pf: PairsFile, n: int, why: str, suffix: str = "") -> list[PaperInput]:
    return [PaperInput(pid, v + suffix, None, error=why, row=n) for v in pf.columns]


def read_pairs(csv_path: str | Path, *, columns: dict[str, str] | None = None, versions: list[str] | None = None,
               root: str | Path | None = None, allow_outside_root: bool = False) -> list[PaperInput]:
    """Every (paper, version) of the CSV, in row order; unusable rows are error entries. Relative folder
    paths resolve against ``root`` (default: the CSV's folder) and stay in it unless ``allow_outside_root``."""
    pf = read_pairs_file(csv_path, columns=columns, versions=versions, root=root,
                         allow_outside_root=allow_outside_root)
    seen: dict[str, int] = {}
    return [e for n, line, cells in pf.rows for e in _row_entries(pf, n, line, cells, seen)]


def with_meta_flaws(papers_dir: str | Path, papers: list[PaperFile]) -> list[PaperInput]:
    """Papers of a folder with the ``flaws`` of their ``meta.json`` (a list of strings) when it has one."""
    cache: dict[str, tuple[list[str], str | None]] = {}
    out = []
    for pf in papers:
        if pf.paper_id not in cache:
            cache[pf.paper_id] = _meta_flaws(Path(papers_dir) / pf.paper_id / "meta.json")
        flaws, err = cache[pf.paper_id]
        out.append(PaperInput(pf.paper_id, pf.version, None if err and not pf.error else pf.path, pf.context,
                              pf.error or err, flaws=tuple(flaws)))
    return out


def _meta_flaws(p: Path) -> tuple[list[str], str | None]:
    if not p.is_file():
        return [], None
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return [], None  # layout.discover already makes these error rows
    value = raw.get("flaws") if isinstance(raw, dict) else None
    if value is None:
        return [], None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return [], f"{p.parent.name}/meta.json: flaws: expected a list of non-empty strings"
    return [v.strip() for v in value], None

