"""``report --html`` in a real headless Chromium: the page of a real review sweep (one paper x v1, v2) and of a
real judged story sweep (one sequence of 2 turns, judged with config/rubrics/story.yaml) shows the paper's
two versions and the story's turns with the judge's scores; the page issues no request but for its own file
and its embedded ``data:`` images (every request recorded through the DevTools protocol, while loading, a
second after, and after typing into a filter box; every host name is mapped to "not found" besides); and a
``<script>`` inside a model's answer is shown as text, never run. Screenshots go to the test's folder.

``slow``: it starts a Ray of its own (in one child process, for the three small sweeps) and a browser.
Skipped where there is no Chromium (``.ci/run`` installs Debian's before ``make test-slow``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import headless
from longsweep.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
RUBRIC = ROOT / "config" / "rubrics" / "story.yaml"
SEQ = """sequences:
  - id: fox
    system: You are a storyteller. Answer in two sentences.
    prompts:
      - {name: start, text: "Begin a story about a fox who wants to fly."}
      - {name: end, text: "End the story."}
"""
# One Ray for the three sweeps, in a child process (the slow tier's other tests start heads of their own).
SWEEPS = """
import sys, ray
from longsweep.cli import main
root, rubric = sys.argv[1], sys.argv[2]
ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="WARNING")
m = ["--model", "smollm2-135m", "--actors", "1"]
print(main(["review", root + "/papers", *m, "--window", "1024", "--versions", "v1,v2", "--config",
            root + "/review.yaml", "--out", root + "/rv"]),
      main(["stories", root + "/seq.yaml", *m, "--max-tokens", "48", "--window", "1024", "--config",
            root + "/stories.yaml", "--out", root + "/st"]),
      main(["judge", root + "/st", "--rubric", rubric, *m, "--window", "4096", "--max-tokens", "128",
            "--out", root + "/st-judged"]))
"""
PAYLOAD = ('<script>document.body.appendChild(document.createElement("pwned" + "-marker"))</script>'
           '<img src=x onerror="document.title = \'pwn\' + \'ed\'"></pre></div><b>bold?</b>')


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = headless.browser()
    if not exe:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)")
    return exe


@pytest.fixture(scope="module")
def sweeps(chromium, smollm, tmp_path_factory) -> Path:
    from longsweep.papers.samples import make_samples
    root = tmp_path_factory.mktemp("browser")
    make_samples(root / "papers", n_papers=1, hidden_in_first=False)
    (root / "review.yaml").write_text("completion_reserve: 160\nruns: 1\nrepetition_penalty: 1.3\nmax_retries: 0\n")
    (root / "stories.yaml").write_text("repetition_penalty: 1.1\nmin_chars: 1\nmax_retries: 0\n")
    (root / "seq.yaml").write_text(SEQ)
    r = subprocess.run([sys.executable, "-c", SWEEPS, str(root), str(RUBRIC)], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(c in ("0", "1") for c in r.stdout.split()[-3:]), r.stdout + r.stderr[-3000:]
    return root


def _html(folder: Path, out: Path) -> Path:
    assert main(["report", str(folder), "--html", str(out)]) == 0
    return out


def _text(s: str) -> str:
    """A text as the DOM serializes it inside an element."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\u00a0", "&nbsp;")


def _block(dom: str, summary: str) -> str:
    start = dom.index(f"<summary>{summary}")
    end = dom.find('<details class="item"', start)
    return dom[start:end if end > 0 else None]


def _only_its_own_file(exe: str, page: Path, profile: Path, script: str | None = None) -> dict:
    pytest.importorskip("aiohttp", reason="the DevTools session uses aiohttp's websocket client")
    seen = headless.page_requests(exe, page, profile, script=script)
    urls = seen["requests"]
    others = [u[:120] for u in urls if u != page.resolve().as_uri() and not u.startswith("data:")]
    assert urls[0] == page.resolve().as_uri() and not others and not seen["sockets"], (others, seen["sockets"])
    return seen


def test_review_and_judged_story_pages_in_a_real_browser(chromium, sweeps, tmp_path):
    rv, st = _html(sweeps / "rv", tmp_path / "rv.html"), _html(sweeps / "st", tmp_path / "st.html")
    dom = headless.dump_dom(chromium, rv, tmp_path / "profile")
    reviews = pq.read_table(sweeps / "rv" / "reviews").to_pylist()
    assert sorted(r["version"] for r in reviews) == ["v1", "v2"]
    block = _block(dom, f"{reviews[0]['paper_id']} —")
    assert "<h4>v1</h4>" in block and "<h4>v2</h4>" in block, block[:2000]  # the two versions side by side
    for r in reviews:
        assert (r["raw_content"] or "") == "" or _text(r["raw_content"][:80]) in block
    dom = headless.dump_dom(chromium, st, tmp_path / "profile")
    turns = sorted(pq.read_table(sweeps / "st" / "stories").to_pylist(), key=lambda r: r["turn"])
    block = _block(dom, "fox / run ")
    assert re.findall(r"<b>turn (\d+) \((\w+)\)", block) == [("1", "start"), ("2", "end")]
    for r in turns:
        assert _text((r["response"] or "")[:60]) in block
    # each turn shows the judge's score of every criterion whose answer parsed (SmolLM2 misses some)
    criteria = {c["id"] for c in yaml.safe_load(RUBRIC.read_text())["criteria"]}
    scored = [j for j in pq.read_table(sweeps / "st-judged" / "judgments").to_pylist() if j["status"] == "ok"]
    assert scored and {j["criterion"] for j in scored} <= criteria
    for n, part in enumerate(block.split('<div class="turn">')[1:]):
        mine = {j["criterion"] for j in scored if j["source_key"] == turns[n]["key"]}
        assert ('class="scores"' in part) == bool(mine) and all(f"<td>{c}</td>" in part for c in mine), part
    for page in (rv, st):
        shot = headless.screenshot(chromium, page, tmp_path / f"{page.stem}.png", tmp_path / "profile")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # typing into the filter box hides the sequences that do not match; still nothing but the file itself
    typed = ("(() => { const b = document.querySelector('input.filter[data-target=story-items]');"
             " b.value = 'no such text'; b.dispatchEvent(new Event('input'));"
             " return document.querySelectorAll('#story-items > .item.hidden').length; })()")
    assert _only_its_own_file(chromium, st, tmp_path / "profile", typed)["value"] == 1
    _only_its_own_file(chromium, rv, tmp_path / "profile")


def test_a_script_in_a_models_answer_is_shown_as_text(chromium, sweeps, tmp_path):
    folder = tmp_path / "rv"
    shutil.copytree(sweeps / "rv", folder)
    for f in (folder / "reviews").glob("*.parquet"):
        t = pq.read_table(f)
        raw = [PAYLOAD + (x or "") for x in t.column("raw_content").to_pylist()]
        i = t.schema.get_field_index("raw_content")
        pq.write_table(t.set_column(i, "raw_content", pa.array(raw, t.schema.field(i).type)), f)
    page = _html(folder, tmp_path / "hostile.html")
    dom = headless.dump_dom(chromium, page, tmp_path / "profile")
    assert "<pwned-marker" not in dom and "pwned</title>" not in dom
    assert _text(PAYLOAD) in dom and "<b>bold?</b>" not in dom  # the answer's markup is its text
    shown = _only_its_own_file(chromium, page, tmp_path / "profile",  # every item unfolded: what a reader sees
                               "document.querySelectorAll('details').forEach(d => { d.open = true; });"
                               "[document.body.innerText, document.title, !!document.querySelector('pwned-marker')]")
    text, title, ran = shown["value"]
    assert PAYLOAD in text and title != "pwned" and not ran
    headless.screenshot(chromium, page, tmp_path / "hostile.png", tmp_path / "profile")
    print(json.dumps({"page_bytes": page.stat().st_size, "requests": len(shown["requests"]),
                      "data_uris": sum(u.startswith("data:") for u in shown["requests"])}))
