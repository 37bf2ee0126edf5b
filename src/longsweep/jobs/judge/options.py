"""Options of the judge job (config/judge.yaml when present, then flags); the model crosses Ray whole."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from longsweep.errors import ErrorKind


class JudgeOptions(BaseModel):
    """Unset (None) falls back to the rubric's value (max_tokens, temperature, constrain_json)."""

    model_config = ConfigDict(extra="forbid")
    rubric: str | None = Field(None, description="The rubric file (YAML): config/rubrics/story.yaml, flaws.yaml.")
    runs: int = Field(1, ge=1, description="Judge runs per item (judge agreement across runs).")
    seed: int = Field(0, ge=0, description="Run k samples with seed + 1000 k.")
    max_tokens: int | None = Field(None, gt=0, description="The judge's answer length (default: the rubric's).")
    temperature: float | None = Field(None, ge=0, description="Default: the rubric's.")
    constrain_json: bool | None = Field(None, description="JSON-schema constrained decoding (default: the rubric's).")
    max_retries: int = Field(0, ge=0, description="Retries (after a reset) of an answer without every score; "
                                                  "a greedy judge gives the same answer again: use with "
                                                  "temperature > 0.")
    buffer: int | None = Field(None, ge=0, description="Tokens kept free beside max_tokens (default: the model's "
                                                       "safety_buffer).")
    papers_dir: str | None = Field(None, description="flaws: the papers folder with meta.json files (default: the "
                                                     "one the review sweep recorded).")
    pairs_csv: str | None = Field(None, description="flaws: a pairs CSV (paperid, flaw_descriptions) instead of "
                                                    "meta.json.")
    retry_errors: list[str] | None = Field(None, description="Run again the items with an error row of these "
                                                            "kinds ([] = every kind), replacing their rows "
                                                            "(longsweep/store/retried.py).")

    @field_validator("retry_errors")
    @classmethod
    def _kinds(cls, v: list[str] | None) -> list[str] | None:
        known = [k.value for k in ErrorKind]
        bad = [k for k in v or [] if k not in known]
        if bad:
            raise ValueError(f"unknown error kind {', '.join(map(repr, bad))} (one of: all, {', '.join(known)})")
        return v
