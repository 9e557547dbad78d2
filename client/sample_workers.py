"""Built-in workers for the worker tasks of Podium's samples (`podium_kitchensink`).

Rules: one small, deterministic function per task type in server/samples/podium_taskdefs.json
(the same input always gives the same output), so a finished sample run can be checked
value by value. They run on worker threads (plain functions) and never block for long.
`SAMPLE_WORKERS` lists them all, ready for `TaskRunner(SAMPLE_WORKERS, url)`.
"""

from __future__ import annotations

from typing import Any

from client.worker import FunctionWorker, worker

__all__ = ["SAMPLE_WORKERS", "expected_kitchensink_output"]


def _int(value: Any, name: str) -> int:
    """An integer input, refusing what is not one (the task fails with this message)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"input {name!r} must be an integer, got {value!r}")
    return int(value)


@worker("podium_ks_prepare")
def prepare(mod: Any, fanoutWidth: Any) -> dict[str, Any]:
    """Parity of `mod` and the dynamic fan-out plan: `fanoutWidth` squaring tasks."""
    m, width = _int(mod, "mod"), _int(fanoutWidth, "fanoutWidth")
    if not 0 <= width <= 50:
        raise ValueError(f"input 'fanoutWidth' must be between 0 and 50, got {width}")
    refs = [f"square_{i}" for i in range(width)]
    return {
        "mod": m,
        "oddEven": m % 2,
        "dynamicTasks": [
            {"name": "podium_ks_square", "taskReferenceName": ref, "type": "SIMPLE"} for ref in refs
        ],
        "dynamicTasksInput": {ref: {"n": m + i} for i, ref in enumerate(refs)},
    }


@worker("podium_ks_classify")
def classify(mod: Any) -> dict[str, Any]:
    """Label a number odd or even (the DYNAMIC task resolves to this type)."""
    m = _int(mod, "mod")
    return {"oddEven": m % 2, "label": "odd" if m % 2 else "even"}


@worker("podium_ks_square")
def square(n: Any) -> dict[str, Any]:
    """One dynamic fork branch: n squared."""
    v = _int(n, "n")
    return {"n": v, "square": v * v}


@worker("podium_ks_branch")
def branch(side: Any, mod: Any) -> dict[str, Any]:
    """The first task of a static fork branch: a seed for that branch's sub-workflow."""
    return {"seed": f"{side}{_int(mod, 'mod')}"}


@worker("podium_ks_sub_step")
def sub_step(seed: Any, step: Any) -> dict[str, Any]:
    """A sub-workflow step: append the step number to the seed."""
    return {"seed": f"{seed}.{_int(step, 'step')}"}


@worker("podium_ks_tick")
def tick(round: Any) -> dict[str, Any]:
    """The DO_WHILE body: echo the round it ran in."""
    return {"round": _int(round, "round")}


@worker("podium_ks_report")
def report(statuses: Any, workflowIds: Any, me: Any) -> dict[str, Any]:
    """Summarise the search result: how many kitchensink runs, and whether this one is listed."""
    ids = workflowIds if isinstance(workflowIds, list) else []
    states = statuses if isinstance(statuses, list) else []
    counts: dict[str, int] = {}
    for state in states:
        counts[str(state)] = counts.get(str(state), 0) + 1
    return {"runsSeen": len(ids), "byStatus": counts, "foundItself": me in ids}


SAMPLE_WORKERS: list[FunctionWorker] = [prepare, classify, square, branch, sub_step, tick, report]


def expected_kitchensink_output(
    *, mod: int = 3, fanout_width: int = 3, rounds: int = 3
) -> dict[str, Any]:
    """The parts of a COMPLETED `podium_kitchensink` output these workers determine.

    Args:
        mod: the workflow input `mod`.
        fanout_width: the workflow input `fanoutWidth`.
        rounds: the workflow input `rounds`.

    Returns:
        The expected `label`, `fanoutTotal`, `rounds` and `seeds` output values.
    """
    return {
        "label": "odd" if mod % 2 else "even",
        "fanoutTotal": sum((mod + i) ** 2 for i in range(fanout_width)),
        "rounds": rounds,
        "seeds": [f"a{mod}.1.2", f"b{mod}.1.2"],
    }
