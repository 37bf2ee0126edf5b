"""Reading a judge's answer: one ``Judgement`` per criterion (or the one flaw), never a default value.

The answer is one JSON object (constrained where the engine allows); an answer cut off by
``max_tokens`` keeps the judgements it completed (``papers.formats.text.json_object`` closes it), and
every judgement that is missing or out of range gets its reason in ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from longsweep.jobs.judge.rubric import Rubric
from longsweep.papers.formats import text as t

FLAW = "flaw"  # the key of the single judgement of a flaws answer
_BOOL = {"true": True, "yes": True, "false": False, "no": False}


@dataclass
class Judgement:
    score: int | None = None
    detected: bool | None = None
    evidence: str | None = None
    reasoning: str | None = None
    error: str | None = None  # why there is no valid score (or detected)


def _detected(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _BOOL.get(value.strip().lower())
    return None


def _one(entry: Any, name: str, rubric: Rubric, cut: bool) -> Judgement:
    if not isinstance(entry, dict):
        why = "missing from the answer" if entry is None else f"not an object ({type(entry).__name__})"
        return Judgement(error=f"{name}: {why}" + (" (the answer was cut off at max_tokens)" if cut else ""))
    entry = {str(k).lower().strip(): v for k, v in entry.items()}
    j = Judgement(evidence=t.text_or_none(entry.get("evidence")), reasoning=t.text_or_none(entry.get("reasoning")))
    if rubric.kind == "flaws":
        j.detected = _detected(entry.get("detected"))
        if j.detected is None:
            j.error = f"detected: {'missing' if entry.get('detected') is None else repr(entry['detected'])[:40]}, " \
                      f"not true or false"
        return j
    issues: list[str] = []
    raw = entry.get("score")
    j.score = t.score(raw, f"{name}.score", rubric.scale.min, rubric.scale.max, issues)  # type: ignore[union-attr]
    if j.score is None:  # t.score reads 4, 4.0, "4" and "4 (good)"; a bool, a fraction, out of range: None
        j.error = issues[0] if issues else f"{name}.score: missing"
    return j


def parse_answer(text: str, rubric: Rubric, finish_reason: str | None = None) -> dict[str, Judgement]:
    """Every judgement the rubric asks for, keyed by criterion id (or ``FLAW``), each valid or with its error."""
    names = [c.id for c in rubric.criteria] if rubric.kind == "scores" else [FLAW]
    obj, closed = t.json_object(t.strip_eos(text or ""))
    cut = closed or finish_reason == "length"
    if obj is None:
        why = "empty answer" if not (text or "").strip() else "no JSON object in the answer"
        return {n: Judgement(error=why + (" (cut off at max_tokens)" if cut else "")) for n in names}
    if rubric.kind == "flaws":
        return {FLAW: _one(obj, FLAW, rubric, cut)}
    return {n: _one(obj.get(n), n, rubric, cut) for n in names}
