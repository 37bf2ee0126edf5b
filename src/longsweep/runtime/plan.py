"""Cost model and batching: longest first, cost-balanced batches.

Actors pull batches from one queue as they free up, so ordering the work longest
first and keeping batches small relative to the whole is greedy LPT scheduling:
the makespan stays close to total work / actors even for a skewed mix.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable

from longsweep.jobs.base import WorkItem

DECODE_WEIGHT = 2.0  # a generated token costs about twice a prefilled one (llama.cpp on CPU: ~92 vs ~205 tok/s)


def item_cost(prompt_tokens: int, max_tokens: int, decode_weight: float = DECODE_WEIGHT) -> float:
    """Predicted cost of one item in prefill-token units."""
    return float(prompt_tokens) + decode_weight * float(max_tokens)


def order_items(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Longest first; items of one ``group`` (the versions and runs of one paper) stay together.

    Groups are ordered by their total cost, longest first, and inside a group the
    items keep their order (v1 runs, then v2 runs): one actor then serves them one
    after another and reuses the KV cache of their shared prompt prefix. Items
    without a group are groups of one.
    """
    groups: dict[Any, list[Any]] = {}
    for i, it in enumerate(items):
        groups.setdefault(_f(it, "group") or ("_", i), []).append(it)
    ranked = sorted(groups.values(), key=lambda g: (-sum(float(_f(it, "cost")) for it in g), str(_f(g[0], "key"))))
    return [it for g in ranked for it in g]


def plan_batches(
    items: Iterable[dict[str, Any]], *, max_items: int = 8, max_cost: float | None = None, n_actors: int = 1,
    per_actor: int = 4,
) -> list[list[dict[str, Any]]]:
    """Group items (each with a ``cost`` and ``key``) into batches, longest first (``order_items``).

    A batch closes when it has ``max_items`` items or its cost would pass
    ``max_cost``. Without ``max_cost`` it is set so that there are at least
    ``per_actor`` batches per actor. For an engine that runs a batch's items in
    turn (llama.cpp), four keep the tail short when actors pull dynamically; an
    engine that batches internally (vLLM) wants one: splitting further only lowers
    the number of sequences it decodes together (``batches_per_actor``).
    """
    ordered = order_items(items)
    if not ordered:
        return []
    if max_cost is None:
        total = sum(float(_f(it, "cost")) for it in ordered)
        max_cost = max(total / max(per_actor * n_actors, 1), float(_f(ordered[0], "cost")))
    batches: list[list[dict[str, Any]]] = []
    cur: list[dict[str, Any]] = []
    cur_cost = 0.0
    for it in ordered:
        c = float(_f(it, "cost"))
        if cur and (len(cur) >= max_items or cur_cost + c > max_cost):
            batches.append(cur)
            cur, cur_cost = [], 0.0
        cur.append(it)
        cur_cost += c
    batches.append(cur)
    return batches


def batches_per_actor(backend: str) -> int:
    """How many batches per actor the planner aims for at least (see ``plan_batches``)."""
    return 1 if backend == "vllm" else 4


def _f(it: Any, name: str) -> Any:
    """A field of a WorkItem (or of a plain dict, for planning experiments in bench/)."""
    return it.get(name) if isinstance(it, dict) else getattr(it, name)


_SHARED = ("messages", "images")  # large payload fields that the runs of one paper version share


def pack_batch(batch: list[WorkItem], order: int = 0) -> str:
    """One batch as JSON, each distinct prompt (payload ``messages``, ``images``) stored once; ``order``: the
    batch's place in the plan (its first item's position), the order a fed engine starts it in (``FEED_ORDER``).

    Runs of one paper version share the same messages (and images) object and, being of one
    ``group``, land next to each other in a batch: the prompt travels once, not once per run.
    """
    import json
    seen: dict[int, int] = {}
    shared: list[Any] = []
    items = []
    for it in batch:
        packed = it.model_dump()
        payload = packed["payload"]
        for f in _SHARED:
            v = it.payload.get(f)
            if not v:
                continue
            idx = seen.setdefault(id(v), len(shared))
            if idx == len(shared):
                shared.append(v)
            del payload[f]
            payload[f"_{f}"] = idx
        items.append(packed)
    return json.dumps({"shared": shared, "items": items, "order": order})


def pack_batches(batches: list[list[WorkItem]], first: int = 0) -> list[str]:
    """Planned batches packed in turn, each with its place in the plan: ``first`` plus the items before it."""
    starts = itertools.accumulate((len(b) for b in batches[:-1]), initial=first)
    return [pack_batch(b, at) for b, at in zip(batches, starts)]


def unpack_batch(blob: str) -> list[WorkItem]:
    return unpack(blob)[0]


def unpack(blob: str) -> tuple[list[WorkItem], int]:
    """A packed batch's items and its place in the plan."""
    import json
    data = json.loads(blob)
    shared = data["shared"]
    out = []
    for it in data["items"]:
        payload = it["payload"]
        for f in _SHARED:
            if f"_{f}" in payload:
                payload[f] = shared[payload.pop(f"_{f}")]
        out.append(WorkItem.model_validate(it))
    return out, int(data.get("order", 0))
