"""Token budgets: pure arithmetic, no tokenizer, no model.

The prompt budget of a request is::

    available = context_window - completion_reserve - overhead - buffer
    overhead  = template_tokens + system_tokens + tokens_per_image * n_images

All numbers are exact tokens of the model's own tokenizer after its chat
template is applied (the caller counts them; see ``tokens.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from longsweep.errors import BudgetError, PromptTooLongError

__all__ = ["BudgetError", "PromptTooLongError", "Budget", "prompt_budget", "check_request"]


@dataclass(frozen=True)
class Budget:
    """The result of ``prompt_budget``: every term, so it can be recorded."""

    context_window: int
    completion_reserve: int
    overhead: int
    buffer: int
    available: int


def prompt_budget(
    *,
    context_window: int,
    completion_reserve: int,
    template_tokens: int = 0,
    system_tokens: int = 0,
    n_images: int = 0,
    tokens_per_image: int = 0,
    buffer: int = 0,
    min_prompt_tokens: int = 1,
) -> Budget:
    """Tokens available for the variable part of the prompt (the document).

    Cases:
      - all terms non-negative, ``context_window`` positive, else ``ValueError``;
      - ``available >= min_prompt_tokens``: returns the Budget;
      - otherwise ``BudgetError`` naming each term: the window cannot hold even
        the minimum prompt beside the reserved completion.
    """
    terms = dict(
        completion_reserve=completion_reserve, template_tokens=template_tokens,
        system_tokens=system_tokens, n_images=n_images, tokens_per_image=tokens_per_image, buffer=buffer,
    )
    for k, v in terms.items():
        if v < 0:
            raise ValueError(f"{k} must be >= 0, got {v}")
    if context_window <= 0:
        raise ValueError(f"context_window must be > 0, got {context_window}")
    overhead = template_tokens + system_tokens + tokens_per_image * n_images
    available = context_window - completion_reserve - overhead - buffer
    if available < min_prompt_tokens:
        raise BudgetError(
            f"no room for the prompt: window {context_window} - completion {completion_reserve} "
            f"- overhead {overhead} (template {template_tokens}, system {system_tokens}, "
            f"{n_images} images x {tokens_per_image}) - buffer {buffer} = {available} "
            f"< minimum {min_prompt_tokens}"
        )
    return Budget(context_window, completion_reserve, overhead, buffer, available)


def check_request(prompt_tokens: int, max_tokens: int, window: int) -> None:
    """Raise ``PromptTooLongError`` unless prompt + completion fit in the window.

    ``prompt_tokens`` is the exact count after the chat template. The boundary is
    inclusive: ``prompt_tokens + max_tokens == window`` fits.
    """
    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
    needed = prompt_tokens + max_tokens
    if needed > window:
        raise PromptTooLongError(needed, window, prompt_tokens, max_tokens)


def usage_ratio(used: int, budget: int) -> float:
    """Fraction of the budget used (``used / budget``); 0 for an empty budget."""
    return used / budget if budget > 0 else 0.0
