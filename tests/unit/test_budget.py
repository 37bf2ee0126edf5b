import pytest

from longsweep.budget import BudgetError, PromptTooLongError, check_request, prompt_budget, usage_ratio


def test_budget_subtracts_every_term():
    b = prompt_budget(context_window=32768, completion_reserve=4096, template_tokens=20, system_tokens=300,
                      n_images=3, tokens_per_image=256, buffer=100)
    assert b.overhead == 20 + 300 + 3 * 256
    assert b.available == 32768 - 4096 - b.overhead - 100


def test_budget_raises_naming_terms_when_nothing_fits():
    with pytest.raises(BudgetError, match=r"window 1000 - completion 900 .* = -20"):
        prompt_budget(context_window=1000, completion_reserve=900, template_tokens=100, buffer=20)


def test_budget_minimum_prompt_boundary():
    assert prompt_budget(context_window=100, completion_reserve=50, min_prompt_tokens=50).available == 50
    with pytest.raises(BudgetError):
        prompt_budget(context_window=100, completion_reserve=50, min_prompt_tokens=51)


@pytest.mark.parametrize("field", ["completion_reserve", "template_tokens", "buffer", "n_images"])
def test_budget_rejects_negative_terms(field):
    kw = dict(context_window=100, completion_reserve=10)
    kw[field] = -1
    with pytest.raises(ValueError, match=field):
        prompt_budget(**kw)


def test_check_request_boundary_is_inclusive():
    check_request(900, 100, 1000)
    with pytest.raises(PromptTooLongError) as e:
        check_request(901, 100, 1000)
    assert "1001 tokens" in str(e.value) and "window is 1000" in str(e.value)
    assert e.value.needed == 1001 and e.value.window == 1000


def test_check_request_rejects_nonpositive_max_tokens():
    with pytest.raises(ValueError):
        check_request(10, 0, 1000)


def test_usage_ratio():
    assert usage_ratio(97, 100) == 0.97
    assert usage_ratio(5, 0) == 0.0
