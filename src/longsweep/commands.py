"""Handlers of the CLI subcommands; ``jobs/`` scripts call the same functions."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any, Iterable

from longsweep.config import ConfigError, ModelSpec, WorkerPolicy, get_model, load_models


from longsweep.errors import InputError


def new_sweep_id(prefix: str) -> str:
    return f"{prefix}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def sweep_dir_for(args: argparse.Namespace, prefix: str) -> tuple[Path, str]:
    if args.out:
        out = Path(args.out)
        sid = args.sweep_id or out.name
    else:
        sid = args.sweep_id or new_sweep_id(prefix)
        out = Path.cwd() / "results" / sid
    return out, sid


def with_window(spec: ModelSpec, window: int | None) -> ModelSpec:
    """The same model with a smaller (or larger) context window, validated again."""
    if not window:
        return spec
    data = spec.model_dump()
    data["context_window"] = window
    data["llama_cpp"]["n_ctx"] = window
    data["vllm"]["max_model_len"] = window
    from longsweep.config import validate
    return validate(ModelSpec, data, f"--window {window} for model {spec.name}")


def checked_before_ray(args: argparse.Namespace, specs: Iterable[ModelSpec]):
    """What can be refused without Ray: the error budget flags and every model's weights file.
    Returns the error budget."""
    from longsweep.runtime.error_budget import ErrorBudget
    try:
        budget = ErrorBudget(max_errors=args.max_errors, max_error_rate=args.max_error_rate)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for spec in specs:
        spec.resolve_weights()  # a missing weights file is refused before Ray starts
    return budget


def exit_code(summary) -> int:
    """All ok, some error rows, or stopped by the error budget (codes in cli.py)."""
    from longsweep.cli import EXIT_ITEM_ERRORS, EXIT_OK, EXIT_STOPPED
    return EXIT_STOPPED if summary.stopped else (EXIT_ITEM_ERRORS if summary.errors else EXIT_OK)


def default_batch(spec: ModelSpec, llama_default: int) -> int:
    """Items per batch: llama.cpp runs a batch's items in turn; vLLM gets the whole batch in one call and
    schedules it continuously, so a batch holds twice the sequences it decodes at once (a queue that
    refills finished slots; 256 when ``max_num_seqs`` is unset). The planner splits a small sweep evenly
    over the actors (``plan.batches_per_actor``)."""
    return 2 * (spec.vllm.max_num_seqs or 128) if spec.backend == "vllm" else llama_default


def cmd_models(args: argparse.Namespace) -> int:
    models = load_models(args.models_file)
    print(f"{'name':<20} {'backend':<10} {'window':>8} {'completion':>10} {'family':<6} source")
    for m in models.values():
        src = m.source.path or m.source.hub or f"{m.source.package}/{m.source.file}"
        print(f"{m.name:<20} {m.backend:<10} {m.context_window:>8} {m.completion_reserve:>10} {m.prompt_family:<6} {src}")
    return 0


def load_prompts(path: Path, *, max_tokens: int | None) -> list[dict[str, Any]]:
    """JSONL prompts: ``{"id", "messages": [...]}`` or ``{"id", "prompt": "..."}``; errors name the line."""
    items, seen = [], set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not JSON ({e})") from None
        pid = str(obj.get("id", n))
        if pid in seen:
            raise InputError(f"{path}:{n}: duplicate id {pid!r}")
        seen.add(pid)
        msgs = obj.get("messages") or ([{"role": "user", "content": obj["prompt"]}] if isinstance(obj.get("prompt"), str) else None)
        if not msgs or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in msgs):
            raise InputError(f"{path}:{n}: needs `messages` (list of {{role, content}}) or a string `prompt`")
        sampling = {k: obj[k] for k in ("max_tokens", "temperature", "top_p", "seed", "stop", "json_schema",
                                        "repetition_penalty") if k in obj}
        if max_tokens is not None:
            sampling["max_tokens"] = max_tokens
        items.append({"id": pid, "messages": msgs, "sampling": sampling})
    if not items:
        raise InputError(f"{path}: no prompts")
    return items


def budget_items(items: list[dict[str, Any]], spec: ModelSpec, model_key: str) -> tuple[list[dict], list[dict]]:
    """Exact-count every prompt; over-long ones become error rows before any engine sees them."""
    from longsweep.budget import PromptTooLongError, check_request
    from longsweep.runtime.plan import item_cost
    from longsweep.tokens import count_messages, load_tokenizer

    tok = load_tokenizer(spec)
    ok, errors = [], []
    for it in items:
        n = count_messages(tok, it["messages"])
        mt = int(it["sampling"].get("max_tokens", 256))
        key = f"{it['id']}/{model_key}"
        try:
            check_request(n, mt, spec.n_ctx)
        except PromptTooLongError as e:
            errors.append({"key": key, "id": it["id"], "model": spec.name, "backend": spec.backend,
                           "status": "error", "error": str(e), "error_kind": "prompt_too_long",
                           "attempts": 0, "resets": 0, "prompt_tokens": n})
            continue
        ok.append({**it, "key": key, "cost": item_cost(n, mt)})
    return ok, errors


def cmd_generate(args: argparse.Namespace) -> int:
    from longsweep.runtime.cluster import connect
    from longsweep.runtime.sweep import run_sweep
    from longsweep.cli import parse_actors

    items = load_prompts(Path(args.prompts), max_tokens=args.max_tokens)
    specs = {name: get_model(name, args.models_file) for name in args.model}
    budget = checked_before_ray(args, specs.values())
    out, sid = sweep_dir_for(args, "generate")
    print(connect(args.address), file=sys.stderr)
    code = 0
    for name, spec in specs.items():
        todo, errors = budget_items(items, spec, name)
        for r in errors:
            r["sweep_id"] = sid
        summary = run_sweep(todo, spec=spec, task="generate", table="generations", sweep_dir=out, sweep_id=sid,
                            concurrency=parse_actors(args.actors), batch_items=args.batch_items or default_batch(spec, 8),
                            error_rows=errors, config={"prompts": str(args.prompts), "model": name},
                            budget=budget)
        print("\n".join(summary.lines()))
        code = max(code, exit_code(summary))
        if summary.stopped:
            break
    return code


def _versions(s: str | None) -> list[str] | None:
    return [v.strip() for v in s.split(",") if v.strip()] if s else None


def load_options(cls, path: str | None, default_file: str, **overrides: Any):
    """Options file (default config/<default_file>), then the command line (None = not given)."""
    from longsweep.config import read_yaml, validate
    p = Path(path) if path else Path.cwd() / "config" / default_file
    data = (read_yaml(p) or {}) if (path or p.exists()) else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of options")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return validate(cls, data, str(p))


def load_review_options(path: str | None, **overrides: Any):
    from longsweep.papers.prepare import ReviewOptions
    return load_options(ReviewOptions, path, "review.yaml", **overrides)


def cmd_plan(args: argparse.Namespace) -> int:
    from longsweep.papers.layout import LayoutError, discover
    from longsweep.review import prepare_all

    spec = with_window(get_model(args.model, args.models_file), args.window)
    opts = load_review_options(None, keep_hidden=args.keep_hidden or None)
    try:
        papers = discover(args.papers_dir, _versions(args.versions))
    except LayoutError as e:
        raise InputError(str(e)) from None
    recs = [p["record"] for p in prepare_all(papers, spec, opts, use_ray=False)]
    if args.json:
        for r in recs:
            print(json.dumps(r, default=str))
    else:
        print(f"{'paper':<40} {'ver':<4} {'pages':>5} {'img':>3} {'tokens':>7} {'budget':>7} {'after':>7}  stages / error")
        for r in recs:
            what = r.get("error") or (",".join(r.get("truncation_stages") or []) or "fits")
            hidden = "  HIDDEN TEXT" if r.get("hidden_text") else ""
            print(f"{r['paper_id'][:40]:<40} {r['version']:<4} {r.get('pages') or 0:>5} {r.get('n_images') or 0:>3} "
                  f"{r.get('tokens_full') or 0:>7} "
                  f"{r.get('budget_tokens') or 0:>7} {r.get('tokens_fitted') or 0:>7}  {what}{hidden}")
    return 1 if any(r.get("error") for r in recs) else 0


def cmd_review(args: argparse.Namespace) -> int:
    from longsweep.cli import parse_actors
    from longsweep.papers.layout import LayoutError
    from longsweep.review import run_review
    from longsweep.runtime.cluster import connect

    opts = load_review_options(args.config, runs=args.runs, max_figures=args.max_figures)
    specs = [with_window(get_model(n, args.models_file), args.window) for n in args.model]
    budget = checked_before_ray(args, specs)
    out, sid = sweep_dir_for(args, "review")
    print(connect(args.address), file=sys.stderr)
    code = 0
    for spec in specs:
        try:
            s = run_review(args.papers_dir, spec=spec, sweep_dir=out, sweep_id=sid, opts=opts,
                           versions=_versions(args.versions), limit=args.limit,
                           concurrency=parse_actors(args.actors), batch_items=args.batch_items or default_batch(spec, 4),
                           budget=budget)
        except LayoutError as e:
            raise InputError(str(e)) from None
        print(f"[{spec.name}]")
        print("\n".join(s.lines()))
        code = max(code, exit_code(s))
        if s.stopped:
            break
    return code


def cmd_export(args: argparse.Namespace) -> int:
    from longsweep.export import export_reviews
    n = export_reviews(Path(args.results_dir), Path(args.to))
    print(f"wrote {n} review files under {args.to}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from longsweep.report import build_report, format_text, public
    try:
        rep = build_report(args.results_dir)
    except FileNotFoundError as e:
        raise InputError(str(e)) from None
    print(json.dumps(public(rep), indent=2, default=str) if args.json else format_text(rep))
    if args.plots:
        from longsweep.report_plots import write_plots
        for p in write_plots(rep, args.plots):
            print(f"plot: {p}", file=sys.stderr)
    return 0


def cmd_stories(args: argparse.Namespace) -> int:
    from longsweep.cli import parse_actors
    from longsweep.runtime.cluster import connect
    from longsweep.stories_job import StoryOptions, run_stories

    opts = load_options(StoryOptions, args.config, "stories.yaml", runs=args.runs, max_tokens=args.max_tokens,
                        reset=args.reset)
    specs = [with_window(get_model(n, args.models_file), args.window) for n in args.model]
    budget = checked_before_ray(args, specs)
    out, sid = sweep_dir_for(args, "stories")
    print(connect(args.address), file=sys.stderr)
    code = 0
    for spec in specs:  # several models run one after another into one table
        s = run_stories(args.sequences, spec=spec, sweep_dir=out, sweep_id=sid, opts=opts,
                        concurrency=parse_actors(args.actors), batch_items=args.batch_items or 1, budget=budget)
        print(f"[{spec.name}]")
        print("\n".join(s.lines()))
        code = max(code, exit_code(s))
        if s.stopped:
            break
    return code
