"""Jobs: one package each, registered by class. A new job is a package and one line below."""

from longsweep.jobs.base import JOBS, Job, Planned, WorkItem, register_job
from longsweep.jobs import generate, review, stories, echo, judge  # noqa: E402,F401 - each registers its Job

__all__ = ["JOBS", "Job", "Planned", "WorkItem", "register_job"]
