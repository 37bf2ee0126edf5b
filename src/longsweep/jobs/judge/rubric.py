"""Rubric files of the judge job: what is judged, on which scale, what the judge sees and answers.

A rubric is YAML, validated by pydantic; errors name the file and the field
(``config/rubrics/story.yaml: criteria.2.anchors: ...``). Two kinds:

- ``scores``: every criterion gets an integer on ``scale`` (each score described by an anchor); one judge
  call per response answers all criteria at once, and the table gets one row per criterion;
- ``flaws``: one judge call per (review, known flaw of its paper): was the flaw detected, with the quoted
  evidence and the reasoning.

``fields`` is the order of the keys of each judgement in the answer: a small judge cut off by
``max_tokens`` keeps what it wrote first, so the score (or ``detected``) comes first by default.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from longsweep.config import read_yaml, validate
from longsweep.errors import ConfigError

FieldName = Literal["score", "detected", "evidence", "reasoning"]

FIELD_HELP = {
    "detected": "true or false",
    "evidence": "a short quote from the text you judge that supports your answer, or an empty string",
    "reasoning": "one or two sentences",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(_Strict):
    min: int = Field(1, ge=0)
    max: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _order(self) -> "Scale":
        if not self.min < self.max <= self.min + 20:
            raise ValueError(f"need min < max <= min + 20, got {self.min}..{self.max}")
        return self

    @property
    def values(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class Criterion(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Key in the answer and the `criterion` column.")
    name: str = Field(min_length=1)
    question: str = Field(min_length=1, description="What the judge decides for this criterion.")
    anchors: dict[int, str] = Field(description="One description per score of the scale.")


class Sees(_Strict):
    earlier_turns: bool = Field(True, description="Stories: the earlier turns of the sequence, windowed.")
    review: Literal["sections", "raw"] = Field(
        "sections", description="Reviews: the parsed sections (summary, strengths, ...) or the raw answer.")


class Rubric(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    kind: Literal["scores", "flaws"]
    source: Literal["stories", "reviews"] = Field(description="The results table it judges.")
    instructions: str = Field(min_length=1, description="The judge's role and task (the system message).")
    calibration: str | None = Field(None, description="How the scale is meant to be used.")
    scale: Scale | None = None
    criteria: list[Criterion] = Field(default_factory=list)
    question: str | None = Field(None, description="flaws: what the judge decides about one flaw.")
    fields: list[FieldName] = Field(description="Keys of each judgement in the answer, in order.")
    sees: Sees = Sees()
    max_tokens: int = Field(512, gt=0)
    temperature: float = Field(0.0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0)
    constrain_json: bool = Field(True, description="JSON-schema constrained decoding where the engine allows.")
    stop: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "Rubric":
        if len(set(self.fields)) != len(self.fields):
            raise ValueError(f"fields: repeated names in {self.fields}")
        if self.kind == "scores":
            self._check_scores()
        else:
            self._check_flaws()
        return self

    def _check_scores(self) -> None:
        if self.scale is None or not self.criteria:
            raise ValueError("kind scores needs `scale` and a non-empty `criteria` list")
        if "score" not in self.fields or "detected" in self.fields:
            raise ValueError("kind scores: `fields` must hold `score` and not `detected`")
        ids = [c.id for c in self.criteria]
        if len(set(ids)) != len(ids):
            raise ValueError(f"criteria: repeated ids in {ids}")
        for i, c in enumerate(self.criteria):
            if sorted(c.anchors) != self.scale.values:
                raise ValueError(f"criteria.{i} ({c.id}): anchors must describe every score "
                                 f"{self.scale.min}..{self.scale.max}, got {sorted(c.anchors)}")

    def _check_flaws(self) -> None:
        if self.source != "reviews":
            raise ValueError("kind flaws judges reviews: set `source: reviews`")
        if self.criteria or self.scale is not None:
            raise ValueError("kind flaws takes no `criteria` or `scale` (the flaws come from the papers)")
        if not self.question:
            raise ValueError("kind flaws needs `question`")
        if "detected" not in self.fields or "score" in self.fields:
            raise ValueError("kind flaws: `fields` must hold `detected` and not `score`")

    def field_schema(self) -> dict[str, Any]:
        """The JSON schema of one judgement (one criterion, or one flaw)."""
        props: dict[str, Any] = {}
        for f in self.fields:
            if f == "score":
                vals = self.scale.values  # type: ignore[union-attr]
                # enum for llama.cpp (its grammar ignores integer bounds), bounds for vLLM and servers
                props[f] = {"type": "integer", "enum": vals, "minimum": vals[0], "maximum": vals[-1]}
            elif f == "detected":
                props[f] = {"type": "boolean"}
            else:  # no maxLength: llama.cpp unrolls it into a grammar that crashed its sampler
                props[f] = {"type": "string"}
        return {"type": "object", "properties": props, "required": list(self.fields)}

    def json_schema(self) -> dict[str, Any]:
        """The whole answer: one object per criterion (scores) or one judgement (flaws)."""
        if self.kind == "flaws":
            return self.field_schema()
        ids = [c.id for c in self.criteria]
        return {"type": "object", "properties": {c: self.field_schema() for c in ids}, "required": ids}

    def answer_format(self) -> str:
        """The answer's shape in words and as an example object (for the system message)."""
        def one() -> str:
            parts = []
            for f in self.fields:
                if f == "score":
                    parts.append(f'"score": <integer {self.scale.min}-{self.scale.max}>')  # type: ignore[union-attr]
                else:
                    parts.append(f'"{f}": <{FIELD_HELP[f]}>')
            return "{" + ", ".join(parts) + "}"
        if self.kind == "flaws":
            return f"Answer with one JSON object and nothing else: {one()}"
        body = ", ".join(f'"{c.id}": {one()}' for c in self.criteria)
        return f"Answer with one JSON object and nothing else, with one entry per criterion in this order: {{{body}}}"

    def system_text(self) -> str:
        """The system message: instructions, criteria with their anchors, calibration, answer format."""
        out = [self.instructions.strip()]
        if self.kind == "scores":
            lo, hi = self.scale.min, self.scale.max  # type: ignore[union-attr]
            out.append(f"Criteria, each scored from {lo} to {hi}:")
            for c in self.criteria:
                anchors = "\n".join(f"  {k}: {c.anchors[k]}" for k in sorted(c.anchors))
                out.append(f"- {c.id} ({c.name}): {c.question.strip()}\n{anchors}")
        else:
            out.append(self.question.strip())  # type: ignore[union-attr]
        if self.calibration:
            out.append(self.calibration.strip())
        out.append(self.answer_format())
        return "\n\n".join(out)

    def digest(self) -> str:
        """A short hash of the rubric's content (recorded in the manifest)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric file; ``ConfigError`` names the file and the field."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping (name, kind, source, instructions, ...)")
    return validate(Rubric, data, str(path))
