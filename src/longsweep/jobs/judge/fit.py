"""Fitting one judge request to the judge's window with exact counts of its own tokenizer.

The text judged (a story response, a review) sits in the last user message and is kept whole when it
fits; otherwise its end is cut at a paragraph, sentence or word boundary with a visible marker, as
much kept as fits, and the tokens dropped are recorded. The earlier turns of a story are then fitted by
``stories.window.fit_window``, the stories job's own logic (oldest turns dropped or shortened first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from longsweep.budget import BudgetError
from longsweep.stories.window import DROP_MARKER, Window, fit_window, messages_for
from longsweep.tokens import Message, Tokenizer

TEXT_CUT_MARKER = "\n\n[... the rest of this text was omitted to fit the judge's context window ...]"
_KEEP_BOUNDARY = 0.8  # a paragraph or sentence end is preferred when it keeps >= 80% of what fits


@dataclass
class Fitted:
    """A request's messages as sent, and what fitting cost."""

    messages: list[Message]
    context_tokens: int
    text_tokens_dropped: int = 0  # of the text judged
    tokens_dropped: int = 0  # of the earlier turns
    turns_dropped: int = 0


def _cuts(text: str) -> tuple[list[int], list[int]]:
    """End offsets of word prefixes, and of paragraph or sentence prefixes (both ascending)."""
    words = [m.start() for m in re.finditer(r"\s+", text)]
    ends = sorted({m.start() for m in re.finditer(r"\n\s*\n", text)} | {m.end() for m in re.finditer(r"[.!?]", text)})
    return words, ends


def fit_text(tok: Tokenizer, build: Callable[[str], list[Message]], text: str, limit: int) -> tuple[str, int]:
    """The longest head of ``text`` (with ``TEXT_CUT_MARKER`` when cut) whose ``build`` fits ``limit``
    tokens; returns it and the tokens it saved. Raises ``BudgetError`` when not even no text fits."""
    count = lambda t: len(tok.encode_messages(build(t)))  # noqa: E731
    full = count(text)
    if full <= limit:
        return text, 0
    if count(TEXT_CUT_MARKER.strip()) > limit:
        raise BudgetError(f"the judge request needs {count(TEXT_CUT_MARKER.strip())} tokens without the text "
                          f"judged; only {limit} fit beside the answer")
    words, ends = _cuts(text)

    def best(offsets: list[int]) -> int:  # the largest offset whose head fits (counts grow with the head)
        lo, hi, found = 0, len(offsets) - 1, 0
        while lo <= hi:
            mid = (lo + hi) // 2
            if count(text[:offsets[mid]] + TEXT_CUT_MARKER) <= limit:
                found, lo = offsets[mid], mid + 1
            else:
                hi = mid - 1
        return found

    keep = best(words)
    nicer = best([e for e in ends if e <= keep])
    if nicer >= _KEEP_BOUNDARY * keep:
        keep = nicer
    head = text[:keep] + TEXT_CUT_MARKER if keep else TEXT_CUT_MARKER.strip()
    return head, full - count(head)


def fit_request(tok: Tokenizer, *, system: str, history: list[tuple[str, str]], final: Callable[[str], str],
                text: str, window: int, max_tokens: int, buffer: int) -> Fitted:
    """System, earlier turns (windowed) and the final message holding ``text``, fitted exactly so that
    ``context + max_tokens + buffer <= window``. The text is fitted first, alone (with room for the marker
    of dropped turns), then the turns."""
    limit = window - max_tokens - buffer
    # room for the marker fit_window puts on the final message when it drops every earlier turn
    marker = DROP_MARKER.format(n=len(history)) if history else ""
    head, text_dropped = fit_text(tok, lambda t: messages_for(system, [], marker + final(t)), text, limit)
    win: Window = fit_window(tok, system=system, history=history, prompt=final(head), window=window,
                             max_tokens=max_tokens, buffer=buffer)
    return Fitted(win.messages, win.context_tokens, text_dropped, win.tokens_dropped, win.turns_dropped)
