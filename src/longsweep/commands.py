"""Handlers of the CLI subcommands: each builds one typed run (flags over YAML over defaults) and calls
the library. ``jobs/`` scripts for ``ray job submit`` go through the same functions."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from longsweep.config import ConfigError, ModelSpec, get_model, read_yaml, validate
from longsweep.errors import ExitCode, FatalError, InputError, InterruptedSweep
from longsweep.jobs.base import Job
from longsweep.store import Loc, is_uri, loc


def new_sweep_id(prefix: str) -> str:
    return f"{prefix}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def parse_actors(s: str | None, default: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    if not s:
        return default
    try:
        parts = [int(x) for x in s.split(",")]
    except ValueError:
        raise ConfigError(f"--actors: expected N or MIN,MAX (integers), got {s!r}") from None
    lo, hi = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    if len(parts) > 2 or lo < 1 or hi < lo:
        raise ConfigError(f"--actors: need 1 <= MIN <= MAX, got {s!r}")
    return lo, hi


def sweep_dir_for(args: argparse.Namespace, prefix: str) -> tuple[Path | Loc, str]:
    """``--out`` (a folder, or an object-store URI such as ``s3://bucket/prefix``; its name is the sweep id
    unless ``--sweep-id``), else ``$LONGSWEEP_OUT/<sweep_id>`` when that is set, else ``results/<sweep_id>``."""
    if args.out and is_uri(args.out):
        try:
            out = loc(args.out)
        except (ValueError, OSError, ImportError) as e:
            raise InputError(f"--out {args.out}: {type(e).__name__}: {e}") from None
        if not out.path.strip("/") or "/" not in out.path.strip("/"):
            raise InputError(f"--out {args.out}: give a folder inside the bucket (s3://BUCKET/PREFIX)")
        return out, args.sweep_id or out.name
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a folder")
        up = next((p for p in out.parents if p.exists()), None)
        if up is not None and not up.is_dir():
            raise InputError(f"--out {out}: {up} is a file, not a folder")
        return out, args.sweep_id or out.name
    sid = args.sweep_id or new_sweep_id(prefix)
    root = os.environ.get("LONGSWEEP_OUT")  # a cluster's default, e.g. s3://bucket/longsweep (cluster.yaml)
    if root:
        args.out = f"{root.rstrip('/')}/{sid}"
        return sweep_dir_for(args, prefix)
    return Path.cwd() / "results" / sid, sid


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def load_options(cls: type[BaseModel], path: str | None, default_file: str | None, **overrides: Any) -> BaseModel:
    """Options file (``--config``, else ``config/<default_file>`` in the working dir when present), then the
    flags given (None = not given, so a False or 0 from the command line still overrides the file).
    An error names the file for a value from the file and the flag for a value from the command line."""
    p = Path(path) if path else (Path.cwd() / "config" / default_file if default_file else None)
    from_file = p is not None and (path is not None or p.exists())
    data = (read_yaml(p) or {}) if from_file else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of options")
    if from_file:
        validate(cls, data, str(p))  # the file alone: its errors name the file
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return cls.model_validate({**data, **given})
    except ValidationError as e:
        lines = []
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            if field in given:
                lines.append(f"{_flag(field)}: {err['msg']} (got {given[field]!r})")
            else:
                lines.append(f"{p if from_file else 'options'}: {'.'.join(map(str, err['loc']))}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def job_from_args(job_cls: type[Job], args: argparse.Namespace) -> Job:
    opts = load_options(job_cls.Options, getattr(args, "config", None), job_cls.options_file,
                        **job_cls.overrides(args))
    return job_cls(opts, args.inputs)


def checked_before_ray(args: argparse.Namespace, specs: list[ModelSpec]):
    """What can be refused without Ray: the error limit flags, the wait, every model's weights file."""
    from longsweep.runtime.error_limit import ErrorLimit
    try:
        limit = ErrorLimit(max_errors=args.max_errors, max_error_rate=args.max_error_rate)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    wait = getattr(args, "wait_for_resources", None)
    if wait is not None and not wait > 0:
        raise ConfigError(f"--wait-for-resources: expected seconds > 0, got {wait}")
    if args.batch_items is not None and args.batch_items < 1:
        raise ConfigError(f"--batch-items: expected N >= 1, got {args.batch_items}")
    for spec in specs:
        spec.check_weights()  # a missing weights file, or a GGUF that is not one, is refused before Ray starts
    return limit


def exit_code(summaries) -> int:
    """All ok, some error rows, or stopped by the error limit."""
    if any(s.stopped for s in summaries):
        return ExitCode.STOPPED
    return ExitCode.ITEM_ERRORS if any(s.errors for s in summaries) else ExitCode.OK


def cmd_sweep(job_cls: type[Job], args: argparse.Namespace) -> int:
    """Every sweep subcommand: one job, one or more models, one results folder, one writer at a time.

    Everything that can be refused is refused before Ray (exit 2); then the run takes the folder's lease
    (store/lease.py: a second run is refused, exit 2), and SIGINT / SIGTERM stop it cleanly (exit 130 /
    143, the manifest says ``interrupted``); a full disk is one line, exit 3."""
    from longsweep.runtime import signals
    from longsweep.store import lease
    from longsweep.runtime.sweep import RunSettings

    job = job_from_args(job_cls, args)
    specs = [get_model(n, args.models_file).with_window(args.window) for n in args.model]
    limit = checked_before_ray(args, specs)
    concurrency = parse_actors(args.actors)
    out, sid = sweep_dir_for(args, job_cls.name)
    check = getattr(job, "check_inputs", None)
    if check is not None:
        check()  # the input file as a whole (unreadable, empty, duplicate ids): refused before Ray
    settings = RunSettings(sweep_dir=out, sweep_id=sid, concurrency=concurrency, batch_items=args.batch_items,
                           limit=limit, config={"models": args.model, "inputs": args.inputs},
                           wait_for_resources=getattr(args, "wait_for_resources", None))
    with signals.stop_on_signals():
        try:
            with lease.hold(out, command=" ".join(["longsweep", *sys.argv[1:]])):
                return _run_held(job, specs, settings, args)
        except signals.SweepInterrupt:  # before the lease was taken: nothing to record
            raise InterruptedSweep(f"{signals.name()}: stopped (no sweep was running: before it started or after "
                                   f"it ended)", signals.exit_code()) from None
        except OSError as e:
            raise FatalError(_disk_message(e, out)) from None


def _run_held(job: Job, specs: list[ModelSpec], settings, args: argparse.Namespace) -> int:
    """The run, holding the lease: set aside what a killed run left, connect, check, plan, run, compact."""
    from longsweep.reparse import remove_leftovers
    from longsweep.results import now_iso
    from longsweep.store import quarantine_unreadable, write_manifest
    from longsweep.runtime import signals
    from longsweep.runtime.cluster import connect
    from longsweep.runtime.feasibility import require_feasible
    from longsweep.runtime.progress import ticker
    from longsweep.runtime.sweep import run_job

    started = now_iso()
    table_dir = loc(settings.sweep_dir) / job.table
    native = contextlib.ExitStack()  # the driver's native stderr, moved to Ray's session logs while it runs
    try:
        with native, ticker(f"{job.name} {', '.join(s.name for s in specs)}: starting (Ray, then planning)"):
            moved = quarantine_unreadable(settings.sweep_dir, job.table)
            remove_leftovers(settings.sweep_dir)  # a reparse killed outright: its temporaries, in every table
            if moved:
                print(f"[longsweep] {len(moved)} unreadable file(s) moved to {moved[0].parent}; their keys run "
                      f"again", file=sys.stderr)
            _compact(table_dir)
            from longsweep.runtime.stream import prefetch
            prefetch(job, specs[0], table_dir)  # a streamed file's resume join, in a child while Ray starts
            if not args.verbose:  # Ray's console lines go to its session logs (runtime/quiet.py)
                from longsweep.runtime.quiet import quiet_ray
                quiet_ray()
            print(connect(args.address, log_to_driver=bool(args.verbose)), file=sys.stderr)
            signals.install()  # ray.init installs its own SIGTERM handler
            from longsweep.runtime.nodes import check_out_visible
            check_out_visible(str(settings.sweep_dir))  # a local --out some node cannot see: exit 2
            if not args.verbose:
                from longsweep.runtime.quiet import native_stderr_to_log
                native.enter_context(native_stderr_to_log())
                _quiet_ray_data_tracebacks()
            for spec in specs:  # a model no node can ever hold is refused at once, with the numbers
                try:
                    require_feasible(spec, wait_given=settings.wait_for_resources is not None)
                except FatalError as e:
                    write_manifest(settings.sweep_dir, sweep_id=settings.sweep_id, job=job.name,
                                   started_at=started, finished_at=now_iso(), model=spec.model_dump(mode="json"),
                                   fatal=str(e))
                    raise
            try:
                summaries = run_job(job, specs, settings)
            except BaseException as e:  # several models: those that finished are summed up all the same
                _print_summaries(getattr(e, "finished", ()))
                raise
    except signals.SweepInterrupt:
        signals.handling()
        raise _interrupted(job, settings, started) from None
    except OSError as e:
        _set_aside(settings.sweep_dir, job.table)
        raise FatalError(_disk_message(e, settings.sweep_dir, job=job.name, sweep_id=settings.sweep_id)) from None
    except FatalError as e:
        _set_aside(settings.sweep_dir, job.table)  # a write cut short by the failure: not left in the table
        raise FatalError(f"{e}{_ray_data_log()}") from None
    _compact(table_dir)
    _print_summaries(zip(specs, summaries))
    return exit_code(summaries)


def _print_summaries(pairs) -> None:
    for spec, s in pairs:
        print(f"[{spec.name}]")
        print("\n".join(s.lines()))


class _NoTracebacks(logging.Filter):
    """Ray Data's error records with a stack trace go to its log file only; the command's last line names
    the root cause in one sentence (``--verbose`` shows them)."""

    MARKS = ("Traceback", "Full stack trace", "An exception was raised from a task", "Exception occurred in")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        return not (record.exc_info or any(m in record.getMessage() for m in self.MARKS))


def _quiet_ray_data_tracebacks() -> None:
    import ray.data  # noqa: F401 - configures its loggers
    from longsweep.runtime.quiet import is_console
    for h in logging.getLogger("ray.data").handlers:
        if is_console(h) and not any(isinstance(f, _NoTracebacks) for f in h.filters):
            h.addFilter(_NoTracebacks())


def _ray_data_log() -> str:
    try:
        from ray.data._internal.logging import get_log_directory
        d = get_log_directory()
        return f" (the full trace: {d}/ray-data.log)" if d else ""
    except Exception:  # noqa: BLE001 - only a pointer for the user
        return ""


def _compact(table_dir: Loc) -> None:
    """Many small files into few (the lease holder only); a failure leaves the files as they are."""
    from longsweep.store import compact_table
    try:
        done = compact_table(table_dir)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - compaction is housekeeping: the rows stay readable without it
        print(f"[longsweep] {table_dir}: files not compacted ({type(e).__name__}: {e})", file=sys.stderr)
        return
    if done:
        print(f"[longsweep] {table_dir}: {done[0]} files compacted into {done[1]}", file=sys.stderr)


def _set_aside(sweep_dir: Loc | Path, table: str) -> None:
    """After a failed write: a file cut short goes to quarantine/, writers' temporaries are removed."""
    from longsweep.store import quarantine_unreadable
    try:
        quarantine_unreadable(sweep_dir, table)
    except OSError:
        pass


def _stop_ray() -> None:
    """Disconnect: the actors this driver owns stop (an embedded Ray stops whole)."""
    try:
        import ray
        if ray.is_initialized():
            ray.shutdown()
    except Exception:  # noqa: BLE001 - stopping is best effort; the process ends next
        pass


def _interrupted(job: Job, settings, started: str) -> InterruptedSweep:
    """SIGINT / SIGTERM arrived: stop the actors, record it in the manifest, one line for the user."""
    from longsweep.results import now_iso
    from longsweep.store import rows_since, write_manifest
    from longsweep.runtime import signals
    sig, out = signals.name(), loc(settings.sweep_dir)
    _stop_ray()
    n = rows_since(out / job.table, started)
    try:
        write_manifest(out, sweep_id=settings.sweep_id, job=job.name, started_at=started, finished_at=now_iso(),
                       interrupted=sig, rows_this_run=n)
        rec = "the manifest says interrupted"
    except OSError as e:
        rec = f"the manifest could not be written ({e.strerror})"
    return InterruptedSweep(f"{sig}: the sweep stopped cleanly; {n} rows written by this run are kept, {rec}; "
                            f"run the same command again to finish the rest", signals.exit_code())


def _disk_message(e: OSError, out: Path | Loc, *, job: str | None = None, sweep_id: str | None = None) -> str:
    """One sentence for a write that failed (a full disk above all), saying whether the manifest has it."""
    import errno
    from longsweep.results import now_iso
    from longsweep.store import write_manifest
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
            errno.EROFS: "the file system is read-only"}.get(e.errno, "a file could not be written")
    msg = f"{what}: {e.strerror or e} ({e.filename or out})"
    try:
        write_manifest(out, sweep_id=sweep_id, job=job, finished_at=now_iso(), fatal=msg)
        rec = "the manifest records it"
    except OSError as e2:
        rec = f"the manifest could not be written either ({e2.strerror or e2})"
    return f"{msg}. Rows written so far are kept and {rec}; free some space and rerun the same command"


def cmd_plan(args: argparse.Namespace) -> int:
    from longsweep.jobs.review import ReviewJob, split_list
    from longsweep.jobs.review.driver import prepare_all
    from longsweep.papers.layout import LayoutError, discover

    spec = get_model(args.model, args.models_file).with_window(args.window)
    opts = load_options(ReviewJob.Options, None, ReviewJob.options_file, keep_hidden=args.keep_hidden or None)
    try:
        papers = discover(args.papers_dir, split_list(args.versions))
    except LayoutError as e:
        raise InputError(str(e)) from None
    recs = [p["record"] for p in prepare_all(papers, spec, opts, use_ray=False)]
    if args.json:
        for r in recs:
            print(json.dumps(r.model_dump(), default=str))
    else:
        print(f"{'paper':<40} {'ver':<4} {'pages':>5} {'img':>3} {'tokens':>7} {'budget':>7} {'after':>7}  stages / error")
        for r in recs:
            what = r.error or (",".join(r.truncation_stages) or "fits")
            hidden = "  HIDDEN TEXT" if r.hidden_text else ""
            print(f"{r.paper_id[:40]:<40} {r.version:<4} {r.pages or 0:>5} {r.n_images or 0:>3} "
                  f"{r.tokens_full or 0:>7} {r.budget_tokens or 0:>7} {r.tokens_fitted or 0:>7}  {what}{hidden}")
    return ExitCode.ITEM_ERRORS if any(r.error for r in recs) else ExitCode.OK


def _export_target(args: argparse.Namespace) -> tuple[str, str]:
    """(format, path) from ``--format``/``--to``, or from ``--openai-batch FILE`` (its older spelling)."""
    if args.openai_batch:
        if args.to or args.format == "seed":
            raise InputError("export: --openai-batch FILE is --format openai-batch --to FILE; give one of the two")
        return "openai-batch", args.openai_batch
    if not args.to:
        raise InputError("export: --to is required (a folder for --format seed, a .jsonl file for openai-batch)")
    return args.format or "seed", args.to


def cmd_export(args: argparse.Namespace) -> int:
    fmt, to = _export_target(args)
    if fmt == "openai-batch":
        from longsweep.reporting.export_batch import export_batch
        n = export_batch(args.results_dir, Path(to))
        print(f"wrote {n} lines to {to}")
        return ExitCode.OK
    from longsweep.reporting.export_seed import export_reviews
    n = export_reviews(args.results_dir, Path(to))
    print(f"wrote {n} review files under {to}")
    return ExitCode.OK


def cmd_report(args: argparse.Namespace) -> int:
    from longsweep.reporting.tables import build_report, format_text, public
    try:
        rep = build_report(args.results_dir)
    except FileNotFoundError as e:
        raise InputError(str(e)) from None
    if args.html:
        from longsweep.reporting.page import write_html
        path = write_html(args.results_dir, args.html, judged=args.judged or [], max_items=args.html_max_items)
        print(f"html: {path} ({path.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    if args.json or not args.html:
        print(json.dumps(public(rep), indent=2, default=str) if args.json else format_text(rep))
    if args.plots:
        from longsweep.reporting.plots import write_plots
        for p in write_plots(rep, args.plots):
            print(f"plot: {p}", file=sys.stderr)
    return ExitCode.OK


def cmd_view(args: argparse.Namespace) -> int:
    from longsweep.reporting.serve import serve
    return serve(args.results_dir, host="127.0.0.1", port=args.port, judged=args.judged or [],
                 max_items=args.html_max_items)
