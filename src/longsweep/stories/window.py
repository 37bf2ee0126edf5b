"""The story window: the chat of turns 1..k-1 plus prompt k, fitted to the context window.

The context of turn k is the system prompt, the earlier (prompt, answer) pairs and
prompt k. When it plus ``max_tokens`` plus ``buffer`` does not fit, the system
prompt and the current prompt stay whole; the oldest turns are dropped, or the
oldest kept one is shortened from its start at paragraph, then sentence,
boundaries, and a visible marker says what was left out. Counts are exact: the
whole chat is tokenized with the model's template after every change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from longsweep.budget import BudgetError
from longsweep.tokens import Message, Tokenizer

DROP_MARKER = "[{n} earlier turn(s) omitted to fit the context window.]\n\n"
CUT_MARKER = "[... the beginning of this answer was omitted to fit the context window ...]\n\n"


@dataclass
class Window:
    messages: list[Message]
    context_tokens: int
    tokens_dropped: int = 0
    turns_dropped: int = 0


def messages_for(system: str | None, history: list[tuple[str, str]], prompt: str) -> list[Message]:
    msgs: list[Message] = [{"role": "system", "content": system}] if system else []
    for p, a in history:
        msgs += [{"role": "user", "content": p}, {"role": "assistant", "content": a}]
    msgs.append({"role": "user", "content": prompt})
    return msgs


def _pieces(text: str) -> list[int]:
    """Offsets where ``text`` may be cut: paragraph starts first, then sentence starts."""
    paras = [m.end() for m in re.finditer(r"\n\s*\n", text)]
    if paras:
        return paras
    return [m.end() for m in re.finditer(r"(?<=[.!?])\s+", text)]


def fit_window(tok: Tokenizer, *, system: str | None, history: list[tuple[str, str]], prompt: str,
               window: int, max_tokens: int, buffer: int = 0) -> Window:
    """Fit the chat so that ``context + max_tokens + buffer <= window`` exactly."""
    limit = window - max_tokens - buffer
    count = lambda h, marker="": len(tok.encode_messages(_with_marker(messages_for(system, h, prompt), marker, system)))
    full = count(history)
    if full <= limit:
        return Window(messages_for(system, history, prompt), full)
    base = count([])
    if base > limit:
        raise BudgetError(f"system prompt + current prompt need {base} tokens; only {limit} fit beside "
                          f"max_tokens {max_tokens} and buffer {buffer} in a window of {window}")
    # drop whole oldest turns while the rest still does not fit
    h = list(history)
    dropped = 0
    while h and count(h[1:], DROP_MARKER.format(n=dropped + 1)) > limit:
        h.pop(0)
        dropped += 1
    marker = DROP_MARKER.format(n=dropped) if dropped else ""
    if h and count(h, marker) > limit:
        # the oldest kept turn: shorten its answer from the start, else drop the turn
        p0, a0 = h[0]
        cuts = _pieces(a0)
        lo, hi, best = 0, len(cuts) - 1, None
        while lo <= hi:  # smallest cut that fits: keep as much of the answer as possible
            mid = (lo + hi) // 2
            cand = [(p0, CUT_MARKER + a0[cuts[mid]:])] + h[1:]
            if count(cand, marker) <= limit:
                best, hi = cand, mid - 1
            else:
                lo = mid + 1
        if best is not None:
            h = best
        else:
            h.pop(0)
            dropped += 1
            marker = DROP_MARKER.format(n=dropped)
    msgs = _with_marker(messages_for(system, h, prompt), marker, system)
    n = len(tok.encode_messages(msgs))
    if n > limit:  # every earlier turn dropped, and the marker that says so does not fit beside the prompt
        raise BudgetError(f"system prompt + current prompt + the dropped-turns marker need {n} tokens; only "
                          f"{limit} fit beside max_tokens {max_tokens} and buffer {buffer} in a window of {window}")
    return Window(msgs, n, tokens_dropped=full - n, turns_dropped=dropped)


def _with_marker(msgs: list[Message], marker: str, system: str | None) -> list[Message]:
    if not marker:
        return msgs
    i = 1 if system else 0
    msgs = list(msgs)
    msgs[i] = {"role": msgs[i]["role"], "content": marker + msgs[i]["content"]}
    return msgs
