"""Options of the review job (config/review.yaml, then flags); the model crosses Ray whole."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from longsweep.errors import ErrorKind


class ReviewOptions(BaseModel):
    """Options of the review seed; unset (None) falls back to the model's registry values."""

    model_config = ConfigDict(extra="forbid")
    preserve_ratio: float = Field(0.7, gt=0, le=1, description="Head share kept by stage 3.")
    buffer: int | None = Field(None, ge=0, description="Safety buffer in tokens (default: model's safety_buffer).")
    completion_reserve: int | None = Field(None, gt=0, description="Tokens for the review (default: model's).")
    tokens_per_image: int | None = Field(None, ge=0, description="Image cost for multimodal models (default: model's).")
    max_figures: int = Field(8, ge=0)
    keep_hidden: bool = Field(False, description="Keep text a human reader cannot see in the prompt.")
    tables: bool = Field(False, description="PDF tables as markdown tables (slow: ~1.4 pages/s).")
    temperature: float = Field(0.0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0, description="1.0 = off; small models loop without ~1.3.")
    runs: int = Field(1, ge=1)
    seed: int = Field(0, ge=0, description="Base seed; run k uses seed + k.")
    format: str | None = Field(None, description="Reviewer format (sea, cyclereviewer, criticalneurips, json); "
                                                 "default: the model's prompt_family.")
    versions: list[str] | None = Field(None, description="Versions to review (default: all found).")
    limit: int | None = Field(None, ge=1, description="Review only the first N papers.")
    accept_repaired_pdfs: bool = Field(False, description="Review a PDF that PyMuPDF had to repair (its text may be "
                                                         "a fragment), flagged pdf_repaired; else a damaged_pdf row.")
    pairs_csv: str | None = Field(None, description="A pairs CSV in the review seed's layout instead of a papers "
                                                    "folder (papers/pairs.py).")
    papers_root: str | None = Field(None, description="Pairs CSV: the folder its relative folder paths resolve "
                                                      "against (default: the CSV's folder).")
    allow_outside_root: bool = Field(False, description="Pairs CSV: read version folders outside that root too.")
    version_columns: dict[str, str] | None = Field(None, description="Pairs CSV: {version: folder column} "
                                                                    "(default: every <version>_folder_path column).")
    flaw_context: bool = Field(False, description="Give the reviewer the paper's known flaws (the CSV's "
                                                  "flaw_descriptions, meta.json's flaws); recorded per row.")
    retry_errors: list[str] | None = Field(None, description="Run again the keys whose row is an error of these "
                                                            "kinds ([] = every kind), replacing their rows.")
    constrain_json: bool = Field(True, description="Use the engine's JSON-schema constraint for formats that answer in JSON.")
    max_retries: int = Field(2, ge=0, description="Retries of an empty or unparseable review (the workers' policy).")

    @field_validator("retry_errors")
    @classmethod
    def _kinds(cls, v: list[str] | None) -> list[str] | None:
        known = [k.value for k in ErrorKind]
        bad = [k for k in v or [] if k not in known]
        if bad:
            raise ValueError(f"unknown error kind {', '.join(map(repr, bad))} (one of: all, {', '.join(known)}); "
                             f"put --retry-errors after the papers folder, or write --retry-errors=all")
        return v
