"""``longsweep report RESULTS --html FILE``: the sweep folder as one self-contained HTML page.

The page holds the run (manifests), reviews, stories (with a judged folder's scores per turn), generations,
judgments and errors by kind; plots are PNGs embedded as data URIs, the stylesheet and the filter script are
inline, and nothing is loaded from anywhere, so the file opens offline and can be mailed. Per-item parts
(papers, sequences, generations, judgments) show at most ``max_items`` items in full and say how many more
there are. ``build_html`` is what ``longsweep view`` serves on each request.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from longsweep.reporting.parts import Raw, page
from longsweep.store import Loc, loc, read_file

MAX_ITEMS = 300
REVIEW_PLOTS = ("rating_by_version", "truncation_rate", "review_tokens_per_s")
STORY_PLOTS = ("completion_per_turn", "story_tokens_per_s")


def _manifest(folder: Loc) -> dict[str, Any]:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _same(a: Any, b: Loc) -> bool:
    try:
        return bool(a) and loc(a) == b
    except (OSError, ValueError):
        return False


def find_judged(root: Loc) -> list[Loc]:
    """Judged folders beside ``root`` or inside it whose manifest names ``root`` (or one of its sweep
    folders) as their source."""
    if not root.is_dir():
        return []
    sources = [root, *root.folders()]
    near = [*root.parent.folders(), *sources[1:]]
    out = []
    for d in near:
        if (d / "judgments").is_dir() and d != root:
            m = _manifest(d)
            src = (m.get("config") or {}).get("source")
            if m.get("job") == "judge" and any(_same(src, s) for s in sources):
                out.append(d)
    return list(dict.fromkeys(out))


def judgment_rows(dirs: list[Path]) -> list[dict[str, Any]]:
    """The rows of every readable ``judgments/*.parquet`` under the folders (and their sub-folders)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for d in map(loc, dirs):
        for f in [*d.glob("judgments/*.parquet"), *d.glob("*/judgments/*.parquet")]:
            if f.path in seen or f.name.startswith("."):
                continue
            seen.add(f.path)
            try:
                rows += read_file(f).to_pylist()
            except Exception:  # noqa: BLE001 - a file cut by a killed writer: skipped, as the report does
                continue
    return rows


def _plots(tmp: Path, names: tuple[str, ...]) -> list[Path]:
    return [tmp / f"{n}.png" for n in names if (tmp / f"{n}.png").exists()]


def source_of(root: Loc) -> list[Loc]:
    """The source folder a judged folder's manifest names, when it is there."""
    src = (_manifest(root).get("config") or {}).get("source") if _manifest(root).get("job") == "judge" else None
    return [loc(src)] if src and loc(src).is_dir() else []


def _source_stories(rep: dict[str, Any], root: Loc) -> None:
    """A judged folder alone: its stories come from the source folder its manifest names, when it is there."""
    src = source_of(root)
    if "stories" in rep or not src:
        return
    from longsweep.reporting.tables import build_report
    try:
        other = build_report(src[0])
    except Exception:  # noqa: BLE001 - the page shows what it can read
        return
    if "stories" in other:
        rep["stories"] = other["stories"]


def build_html(results_dir: str | Path, *, judged: list[str | Path] = (), max_items: int = MAX_ITEMS) -> str:
    """The page of a sweep folder (or a folder of them); raises ``FileNotFoundError`` / ``InputError`` when
    there is nothing to show. ``judged``: judged folders whose scores join the stories (found ones are added)."""
    from longsweep.reporting.tables import build_report
    from longsweep.reporting.judge import build_judge_report, write_judge_plots
    from longsweep.reporting.plots import write_plots
    from longsweep.reporting import reviews, runinfo, stories

    root = loc(results_dir)
    rep = build_report(root)
    _source_stories(rep, root)
    extra = [loc(j) for j in judged] + [j for j in find_judged(root) if j not in [loc(x) for x in judged]]
    jrows = judgment_rows([root, *extra])
    sections, nav = [], []
    with tempfile.TemporaryDirectory(prefix="longsweep-html-") as t:
        tmp = Path(t)
        write_plots({k: v for k, v in rep.items() if k != "judgments"}, tmp)  # the judge's plots: below
        versions = sorted({str(r["version"]) for r in rep.get("reviews", {}).get("_rows", []) if r["version"]})
        sections.append(runinfo.run_section(root, extra, versions))
        nav.append(("run", "Run"))
        if "reviews" in rep:
            sections.append(reviews.reviews_section(root, rep["reviews"], _plots(tmp, REVIEW_PLOTS), tmp / "compare",
                                                    max_items))
            nav.append(("reviews", "Reviews"))
        if "stories" in rep:
            sections.append(stories.stories_section(rep["stories"], _plots(tmp, STORY_PLOTS), jrows, max_items))
            nav.append(("stories", "Stories"))
        if "generations" in rep:
            sections.append(runinfo.generations_section(rep["generations"], max_items))
            nav.append(("generations", "Generations"))
        jrep = rep.get("judgments")
        if jrep is None and extra:
            try:
                jrep = build_judge_report(extra[0])
            except FileNotFoundError:  # a judged folder without readable rows yet
                jrep = None
        if jrep is not None:
            jplots = write_judge_plots(jrep, tmp / "judge")
            sections.append(runinfo.judgments_section(jrep, jplots, jrows, max_items))
            nav.append(("judgments", "Judgments"))
        tables = {k: rep[k]["_rows"] for k in ("reviews", "stories", "generations") if k in rep}
        tables["judgments"] = jrows
        sections.append(runinfo.errors_section(tables))
        nav.append(("errors", "Errors"))
    return page(f"longsweep: {root.name}", nav, Raw("".join(sections)))


def write_html(results_dir: str | Path, out: str | Path, **kw: Any) -> Path:
    """Write the page to ``out`` (parents created) through a temporary file; returns the path."""
    text = build_html(results_dir, **kw)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path
