"""Fit a paper into a prompt budget, in three stages, with exact token counts.

    stage 1  ref_abstracts  drop abstracts inside the reference list (citations stay)
    stage 2  appendix       drop everything after the references, with a notice
    stage 3  head_tail      keep a head share (default 0.7) and a tail share of what
                            remains, cut at paragraph/sentence boundaries, notice between

It stops at the first stage that fits. The text is cut into segments (paragraphs,
sentences of long paragraphs) that are tokenized once; stage decisions use the
sums of their counts, and every prompt that is returned is re-counted exactly,
with the chat template and the review instruction around it, and fits.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from longsweep.budget import BudgetError
from longsweep.papers.sections import Sections, find_sections
from longsweep.tokens import Message, Tokenizer

APPENDIX_NOTICE = "\n\n[Appendices omitted to fit the reviewer's context window: {chars} characters after the references.]\n\n"
MIDDLE_NOTICE = "\n\n[... {chars} characters of the paper omitted here to fit the reviewer's context window ...]\n\n"
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_PARA = re.compile(r"\n\s*\n")
MAX_SEG_CHARS = 400


@dataclass
class FitResult:
    text: str
    messages: list[Message]
    prompt_tokens: int  # exact, of ``messages``
    budget_tokens: int  # the most prompt tokens allowed
    tokens_full: int
    was_truncated: bool
    stages: list[str] = field(default_factory=list)
    stage_tokens: list[tuple[str, int]] = field(default_factory=list)
    chars_removed: int = 0
    exact: bool = True

    @property
    def usage(self) -> float:
        return self.prompt_tokens / self.budget_tokens if self.budget_tokens else 0.0


@dataclass
class _Seg:
    start: int
    end: int
    kind: str  # body | abstract | appendix


def _split_long(text: str, start: int, end: int, kind: str, out: list[_Seg]) -> None:
    """Sentences of a long paragraph; a sentence still too long is cut at spaces, then hard."""
    if end - start <= 200:
        out.append(_Seg(start, end, kind))
        return
    cuts = [start]
    for m in _SENT.finditer(text[start:end]):
        cuts.append(start + m.start())  # whitespace goes with the next piece, as BPE pre-tokenizers do
    cuts.append(end)
    for a, b in zip(cuts, cuts[1:]):
        while b - a > MAX_SEG_CHARS:
            sp = text.rfind(" ", a + 1, a + MAX_SEG_CHARS)
            c = sp + 1 if sp > a else a + MAX_SEG_CHARS
            out.append(_Seg(a, c, kind))
            a = c
        if b > a:
            out.append(_Seg(a, b, kind))


def segment(text: str, sec: Sections) -> list[_Seg]:
    """Contiguous segments covering ``text``, cut at paragraphs, sentences, abstracts and the appendix."""
    bounds = {0, len(text)}
    for m in _PARA.finditer(text):
        bounds.add(m.start())
    kinds: list[tuple[int, int, str]] = [(a, b, "abstract") for a, b in sec.ref_abstracts]
    if sec.appendix is not None:
        kinds.append((sec.appendix, len(text), "appendix"))
    for a, b, _ in kinds:
        bounds.update((a, b))
    pts = sorted(bounds)
    segs: list[_Seg] = []
    for a, b in zip(pts, pts[1:]):
        kind = next((k for s, e, k in kinds if s <= a and b <= e), "body")
        _split_long(text, a, b, kind, segs)
    return segs


def _count_many(tok: Tokenizer, texts: list[str]) -> list[int]:
    """Token counts of many pieces; two threads where the tokenizer releases the GIL (llama.cpp's)."""
    if len(texts) < 64 or not getattr(tok, "releases_gil", False):
        return [len(tok.encode(t)) for t in texts]
    half = len(texts) // 2
    with ThreadPoolExecutor(2) as ex:
        a = ex.submit(lambda: [len(tok.encode(t)) for t in texts[:half]])
        b = [len(tok.encode(t)) for t in texts[half:]]
        return a.result() + b


def fit_paper(
    text: str,
    *,
    tokenizer: Tokenizer,
    build: Callable[[str], list[Message]],
    max_prompt_tokens: int,
    head_ratio: float = 0.7,
    sections: Sections | None = None,
) -> FitResult:
    """Fit ``text`` so that ``build(text)`` has at most ``max_prompt_tokens`` tokens.

    ``build`` wraps the paper in the full chat (instruction, context, format);
    ``max_prompt_tokens`` is window - completion reserve - buffer - image tokens.
    Raises ``BudgetError`` when not even the instruction without any paper fits.
    """
    if not 0 < head_ratio <= 1:
        raise ValueError(f"head_ratio must be in (0, 1], got {head_ratio}")
    count_prompt = lambda t: len(tokenizer.encode_messages(build(t)))
    overhead = count_prompt("")
    if overhead >= max_prompt_tokens:
        raise BudgetError(f"the review instruction alone takes {overhead} tokens; the budget is {max_prompt_tokens}")
    exact_full = None
    if overhead + len(text) / 5.0 <= max_prompt_tokens:  # might fit (papers run 2.5-5 chars a token): one exact count
        exact_full = count_prompt(text)
        if exact_full <= max_prompt_tokens:
            return _whole(text, build, exact_full, max_prompt_tokens, tokenizer.exact)
    return _fit_in_stages(text, sections or find_sections(text), tokenizer=tokenizer, build=build,
                          count_prompt=count_prompt, overhead=overhead, exact_full=exact_full,
                          max_prompt_tokens=max_prompt_tokens, head_ratio=head_ratio)


def _fit_in_stages(text: str, sec: Sections, *, tokenizer: Tokenizer, build: Callable[[str], list[Message]],
                   count_prompt: Callable[[str], int], overhead: int, exact_full: int | None,
                   max_prompt_tokens: int, head_ratio: float) -> FitResult:
    """A paper that may not fit whole: whole if the estimate says so and the exact count agrees, else cut in
    three stages (reference-list abstracts, appendices, then head + tail of what remains)."""
    segs = segment(text, sec)
    counts = _count_many(tokenizer, [text[s.start:s.end] for s in segs])
    est_full = exact_full if exact_full is not None else overhead + sum(counts)
    res = FitResult(text="", messages=[], prompt_tokens=0, budget_tokens=max_prompt_tokens, tokens_full=est_full,
                    was_truncated=False, exact=tokenizer.exact)
    res.stage_tokens.append(("full", est_full))

    def attempt(t: str, stage_est: int) -> bool:
        if stage_est > max_prompt_tokens:
            return False
        n = count_prompt(t)
        if n > max_prompt_tokens:
            return False
        res.text, res.messages, res.prompt_tokens = t, build(t), n
        res.chars_removed = len(text) - len(t)
        return True

    if exact_full is None and attempt(text, est_full):
        res.tokens_full = res.prompt_tokens
        res.stage_tokens[0] = ("full", res.prompt_tokens)
        return res
    res.was_truncated = True
    keep = [True] * len(segs)
    for stage, kind in (("ref_abstracts", "abstract"), ("appendix", "appendix")):
        drop = [i for i, sg in enumerate(segs) if sg.kind == kind]
        if not drop:
            continue
        res.stages.append(stage)
        t, est = _drop_from_end(text, segs, counts, keep, drop, kind, tokenizer, overhead, max_prompt_tokens,
                                count_prompt)
        res.stage_tokens.append((stage, est))
        if attempt(t, est):
            return res
    # stage 3: head + tail of what remains
    idx = [i for i, k in enumerate(keep) if k]
    res.stages.append("head_tail")
    t3, n3 = _head_tail(text, segs, counts, idx, tokenizer, overhead, max_prompt_tokens, head_ratio, count_prompt)
    res.stage_tokens.append(("head_tail", n3))  # n3 is the exact count of the final prompt
    if n3 > max_prompt_tokens:
        raise BudgetError(f"could not fit the paper into {max_prompt_tokens} tokens")
    res.text, res.messages, res.prompt_tokens, res.chars_removed = t3, build(t3), n3, len(text) - len(t3)
    return res


def _whole(text: str, build, tokens: int, budget: int, exact: bool) -> FitResult:
    """The paper fits as it is: ``tokens`` is the whole prompt's exact count."""
    return FitResult(text=text, messages=build(text), prompt_tokens=tokens, budget_tokens=budget, tokens_full=tokens,
                     was_truncated=False, stage_tokens=[("full", tokens)], exact=exact)


def _join(text: str, segs: list[_Seg], keep: list[bool], notices: dict[int, str]) -> str:
    out = []
    for i, (sg, k) in enumerate(zip(segs, keep)):
        if k:
            out.append(text[sg.start:sg.end])
        elif i in notices:
            out.append(notices[i])
    return "".join(out)


def _drop_from_end(text, segs, counts, keep, drop, kind, tok, overhead, limit, count_prompt):
    """Drop segments of one kind, last first, until the prompt fits (or all are dropped).
    Mutates ``keep``; returns the text and its estimated prompt tokens."""
    notice_of = lambda removed: (APPENDIX_NOTICE if kind == "appendix" else "").format(chars=removed)
    notice_tokens = len(tok.encode(notice_of(10 ** 7))) if kind == "appendix" else 0

    def render() -> tuple[str, int]:
        gone = [i for i in drop if not keep[i]]
        removed = sum(segs[i].end - segs[i].start for i in gone)
        notices = {gone[0]: notice_of(removed)} if gone and kind == "appendix" else {}
        est = overhead + sum(c for c, k in zip(counts, keep) if k) + (notice_tokens if gone else 0)
        return _join(text, segs, keep, notices), est

    est = overhead + sum(c for c, k in zip(counts, keep) if k) + notice_tokens
    for i in reversed(drop):  # by the sums first: no tokenization per step
        if est <= limit:
            break
        keep[i] = False
        est -= counts[i]
    t, est = render()
    while est <= limit and any(keep[i] for i in drop):
        over = count_prompt(t) - limit
        if over <= 0:
            break
        for i in reversed(drop):  # the sums were a few tokens short: drop at least that many more
            if keep[i]:
                keep[i] = False
                over -= counts[i]
                if over <= 0:
                    break
        t, est = render()
    return t, est


def _head_tail(text, segs, counts, idx, tok, overhead, limit, head_ratio, count_prompt) -> tuple[str, int]:
    """Keep a head (``head_ratio`` of the room) and a tail (the rest) of the segments ``idx``."""
    removed_chars = lambda h, t: sum(segs[i].end - segs[i].start for i in idx[h:len(idx) - t])
    notice_tokens = len(tok.encode(MIDDLE_NOTICE.format(chars=10 ** 7)))
    avail = limit - overhead - notice_tokens
    h, used = 0, 0
    while h < len(idx) and used + counts[idx[h]] <= head_ratio * avail:
        used += counts[idx[h]]
        h += 1
    t = 0
    while t < len(idx) - h and used + counts[idx[-1 - t]] <= avail:
        used += counts[idx[-1 - t]]
        t += 1

    # fill what is left with the start of the next segment, cut at a sentence end, else a space
    extra = ""
    if h < len(idx) - t and avail - used > 8:
        nxt = segs[idx[h]]
        piece = text[nxt.start:nxt.end]
        want = int(len(piece) * (avail - used) / max(counts[idx[h]], 1) * 0.9)
        cut = piece.rfind(". ", 0, want) + 1
        if cut <= 0 and not _SENT.search(piece):  # an unpunctuated run: a space is the only boundary
            cut = piece.rfind(" ", 0, want)
        if cut > 0 and len(tok.encode(piece[:cut])) <= avail - used:
            extra = piece[:cut]

    def build(h: int, t: int) -> str:
        head = ("".join(text[segs[i].start:segs[i].end] for i in idx[:h]) + extra).rstrip()
        tail = "".join(text[segs[i].start:segs[i].end] for i in idx[len(idx) - t:]).lstrip()
        return head + MIDDLE_NOTICE.format(chars=removed_chars(h, t) - len(extra)) + tail

    cand = build(h, t)
    n = count_prompt(cand)
    while n > limit and (h or t):  # the sums were short by a few tokens: shave the side over its share
        over = n - limit
        while over > 0 and (h or t):
            tail_now = sum(counts[i] for i in idx[len(idx) - t:])
            if t > 0 and (h == 0 or tail_now > (1 - head_ratio) * avail):
                t -= 1
                over -= counts[idx[len(idx) - t - 1]]
            else:
                h -= 1
                over -= counts[idx[h]]
        extra = ""
        cand = build(h, t)
        n = count_prompt(cand)
    return cand, n
