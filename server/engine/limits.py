"""Worker-task admission: TaskDef `concurrentExecLimit` and rate limits, per process.

Rules:
- Counts are kept in memory by the process that hands tasks out (the one answering
  polls). With several server processes each enforces the limit on its own share; after a
  restart the in-flight count starts from zero (documented in docs/compatibility.md).
- In-flight = polled (IN_PROGRESS) and not yet terminal or put back to SCHEDULED;
  `reconcile(workflow)` is called after every commit of a workflow that holds tracked
  tasks, so timeouts and cancellations free their slot too.
- Rate limit: at most `rateLimitPerFrequency` starts within any window of
  `rateLimitFrequencyInSeconds` (sliding window of start times).
"""

from __future__ import annotations

from collections import deque

from core.enums import TaskStatus
from core.models import Task, TaskDef, Workflow


def _positive(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


class AdmissionLimits:
    def __init__(self) -> None:
        self._inflight: dict[str, set[str]] = {}  # def name -> task ids
        self._by_workflow: dict[str, dict[str, str]] = {}  # workflow id -> task id -> def
        self._starts: dict[str, deque[int]] = {}  # def name -> start times (ms)

    @staticmethod
    def _limits(task: Task, task_def: TaskDef | None) -> tuple[int, int, int]:
        concurrency = _positive(task_def.concurrent_exec_limit) if task_def else 0
        per_freq = task.rate_limit_per_frequency or (
            _positive(task_def.rate_limit_per_frequency) if task_def else 0
        )
        freq_s = (
            _positive(task_def.rate_limit_frequency_in_seconds)
            if task_def and not task.rate_limit_per_frequency
            else task.rate_limit_frequency_in_seconds
        ) or 1
        return concurrency, per_freq, freq_s

    def delay_ms(self, task: Task, task_def: TaskDef | None, now_ms: int) -> int:
        """0 when `task` may start now, else how long to hide its message."""
        concurrency, per_freq, freq_s = self._limits(task, task_def)
        name = task.task_def_name or task.task_type
        if concurrency and len(self._inflight.get(name, ())) >= concurrency:
            return -1  # unknown: the caller uses its postpone default
        if per_freq:
            window = self._starts.get(name)
            if window is not None:
                horizon = now_ms - freq_s * 1000
                while window and window[0] <= horizon:
                    window.popleft()
                if len(window) >= per_freq:
                    return max(1, window[0] + freq_s * 1000 - now_ms)
        return 0

    def started(self, workflow_id: str, task: Task, task_def: TaskDef | None, now_ms: int) -> None:
        """Count a task handed to a worker."""
        concurrency, per_freq, _ = self._limits(task, task_def)
        name = task.task_def_name or task.task_type
        if concurrency:
            self._inflight.setdefault(name, set()).add(task.task_id)
            self._by_workflow.setdefault(workflow_id, {})[task.task_id] = name
        if per_freq:
            self._starts.setdefault(name, deque()).append(now_ms)

    def reconcile(self, workflow: Workflow) -> None:
        """Free the slots of tracked tasks of `workflow` that are no longer IN_PROGRESS."""
        tracked = self._by_workflow.get(workflow.workflow_id)
        if not tracked:
            return
        running = {t.task_id for t in workflow.tasks if t.status is TaskStatus.IN_PROGRESS}
        for task_id in [t for t in tracked if t not in running]:
            name = tracked.pop(task_id)
            ids = self._inflight.get(name)
            if ids is not None:
                ids.discard(task_id)
        if not tracked:
            del self._by_workflow[workflow.workflow_id]

    def forget(self, workflow_id: str) -> None:
        """The workflow was removed: drop its tracked tasks."""
        for task_id, name in self._by_workflow.pop(workflow_id, {}).items():
            self._inflight.get(name, set()).discard(task_id)
