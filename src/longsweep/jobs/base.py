"""The Job contract: everything the runtime (plan, sweep, worker, retry, progress) knows of a job.

A job is one package under ``longsweep/jobs/`` holding a ``Job`` subclass, registered by class with
``@register_job``. The driver calls ``make_items``; the job object (its typed options included)
crosses Ray whole, and each actor calls ``task(ctx)`` once and ``task.run(items)`` per batch.
"""

from __future__ import annotations

import abc
import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from longsweep.config import ModelSpec, WorkerPolicy
from longsweep.results import COMMON

if TYPE_CHECKING:
    from longsweep.runtime.context import WorkerContext


class WorkItem(BaseModel):
    """One unit of work: ``key`` is stable across reruns; ``payload`` is the job's own typed record
    (validated again on the worker by the job's task)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str
    group: str | None = Field(None, description="Items of one group run next to each other (KV prefix reuse).")
    cost: float = Field(ge=0, description="Predicted cost in prefill-token units (plan.item_cost).")
    n_rows: int = Field(1, ge=1, description="Rows this item yields (a story: one per turn).")
    payload: dict[str, Any]


@dataclass
class Planned:
    """What ``make_items`` returns: items to run, rows already decided on the driver, summary lines."""

    items: list[WorkItem]
    error_rows: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """The worker side of a job: one instance per actor."""

    async def run(self, items: list[WorkItem]) -> list[dict[str, Any]]:
        """Rows (dicts with the job's columns) for ``items``; an item's failure is an error row. Rows may
        also leave earlier through ``ctx.sink`` (written as they finish); those are not returned."""


class Job(abc.ABC):
    """A kind of sweep. Subclasses set the class attributes and implement ``make_items`` and ``task``."""

    name: ClassVar[str]  # the subcommand and the manifest's job
    help: ClassVar[str]
    table: ClassVar[str]  # the results folder of its rows: <sweep>/<table>/*.parquet
    columns: ClassVar[list[tuple[str, pa.DataType]]]  # its columns after the common ones
    Options: ClassVar[type[BaseModel]]
    options_file: ClassVar[str | None] = None  # config/<file> read when present, below the flags
    llama_batch: ClassVar[int] = 4  # items per batch on an engine that runs a batch in turn

    def __init__(self, options: BaseModel, inputs: str, *, policy: WorkerPolicy | None = None):
        self.options, self.inputs, self._policy = options, str(inputs), policy

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        """The job's own flags (the sweep flags are added by the CLI)."""

    @classmethod
    def overrides(cls, args: argparse.Namespace) -> dict[str, Any]:
        """Options given on the command line; None means not given (the file or the default holds)."""
        return {}

    @classmethod
    def schema(cls) -> pa.Schema:
        return pa.schema(COMMON + cls.columns)

    def policy(self) -> WorkerPolicy:
        """The workers' retry and reset policy: the one given to the constructor, else the job's default."""
        return self._policy or self.default_policy()

    def default_policy(self) -> WorkerPolicy:
        """Reset model state only on failure, unless the job says otherwise (stories: after long answers)."""
        return WorkerPolicy()

    def check_inputs(self) -> None:
        """The inputs as a whole (unreadable, empty, duplicate ids), checked before Ray: raise InputError."""

    @abc.abstractmethod
    def make_items(self, spec: ModelSpec, sweep_id: str) -> Planned:
        """Driver side: read the inputs, fit them to ``spec``'s window, return the work items."""

    @abc.abstractmethod
    def task(self, ctx: "WorkerContext") -> Task:
        """Worker side: the object whose ``run`` turns items into rows."""

    def item_error_rows(self, item: WorkItem, ctx: "WorkerContext", error: str) -> list[dict[str, Any]]:
        """The error rows of an item whose task raised on its own data (the worker ran it alone to be sure):
        one row under the item's key, unless the job keys its rows otherwise (judge: one per criterion), with
        the payload's plain values that are columns of the table (``id``, ``sequence_id``...)."""
        from longsweep.errors import ErrorKind
        names = set(self.schema().names) - {"key", "item_key", "status", "error", "error_kind"}
        cols = {k: v for k, v in item.payload.items() if k in names and isinstance(v, (str, int, float, bool))}
        return [ctx.error_row(item.key, ErrorKind.ITEM_FAILED, error, **cols)]

    def item_done(self, item: WorkItem, done: dict[str, int]) -> bool:
        """Whether ``item`` needs no run; ``done`` counts the rows already written per item key."""
        return item.key in done


JOBS: dict[str, type[Job]] = {}


def register_job(cls: type[Job]) -> type[Job]:
    """Class decorator: make ``cls`` a subcommand and a job the runtime can run."""
    if getattr(cls, "name", None) in JOBS and JOBS[cls.name] is not cls:
        raise ValueError(f"two jobs named {cls.name!r}: {JOBS[cls.name].__module__} and {cls.__module__}")
    JOBS[cls.name] = cls
    return cls
