"""Unit test of the retry rounds with a scripted engine double (the real engines' retries: tests/integration)."""

from longsweep.budget import PromptTooLongError
from longsweep.config import WorkerPolicy
from longsweep.engines.base import GenerationRequest, GenerationResult
from longsweep.runtime.retry import RetryItem as Job, StateKeeper, run_rounds


class Scripted:
    """Answers each prompt from a script (one answer per attempt); records calls and resets."""

    def __init__(self, script: dict[str, list]):
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[list[str]] = []
        self.resets = 0

    def generate(self, reqs):
        names = [r.messages[0]["content"] for r in reqs]
        self.calls.append(names)
        out = []
        for n in names:
            a = self.script[n].pop(0)
            if isinstance(a, Exception) and len(reqs) > 1:
                raise a  # one bad item fails a batch call, as a real engine does
            out.append(a if isinstance(a, Exception) else GenerationResult(a, "stop", 5, len(a)))
        return out

    def reset(self):
        self.resets += 1


def _jobs(engine, names):
    return [Job(n, GenerationRequest(messages=[{"role": "user", "content": n}]), None, engine) for n in names]


def test_failed_items_are_retried_together_after_one_reset():
    eng = Scripted({"a": ["a fine answer"], "b": ["", "", "b fine answer"], "c": ["", "c fine answer"]})
    policy = WorkerPolicy(min_chars=3, max_retries=2, reset_after_chars=None)
    outs = run_rounds(_jobs(eng, ["a", "b", "c"]), policy, StateKeeper(eng))
    assert eng.calls == [["a", "b", "c"], ["b", "c"], ["b"]]
    assert eng.resets == 2
    assert [(o.ok, o.attempts, o.resets) for o in outs] == [(True, 1, 0), (True, 3, 2), (True, 2, 1)]
    assert outs[1].result.text == "b fine answer"


def test_a_failing_batch_is_split_and_only_the_bad_item_fails():
    boom = RuntimeError("boom")
    eng = Scripted({"a": ["a fine answer", "a fine answer"], "b": [boom, boom, boom], "c": ["c fine answer"] * 2})
    policy = WorkerPolicy(min_chars=3, max_retries=1, reset_after_chars=None, reset_on_failure=True)
    outs = run_rounds(_jobs(eng, ["a", "b", "c"]), policy, StateKeeper(eng))
    assert eng.calls == [["a", "b", "c"], ["a"], ["b"], ["c"], ["b"]]
    assert [o.ok for o in outs] == [True, False, True]
    assert outs[1].error_kind == "engine_error" and outs[1].attempts == 2 and "boom" in outs[1].error
    assert eng.resets == 2  # one before the retry round, one after the failure


def test_prompt_too_long_is_never_retried_and_long_answers_reset_once():
    eng = Scripted({"long": [PromptTooLongError(10, 5, 8, 2)] * 2, "x": ["x" * 50], "y": ["y" * 60]})
    policy = WorkerPolicy(min_chars=1, max_retries=2, reset_after_chars=40)
    outs = run_rounds(_jobs(eng, ["long"]) + _jobs(eng, ["x", "y"]), policy, StateKeeper(eng))
    assert outs[0].error_kind == "prompt_too_long" and outs[0].attempts == 1
    assert [o.ok for o in outs[1:]] == [True, True] and [o.resets for o in outs[1:]] == [1, 1]
    assert eng.calls == [["long", "x", "y"], ["long"], ["x"], ["y"]]
    assert eng.resets == 1  # one reset for the round's two long answers; the refused prompt is not retried
