"""Machinery of the resilience tests (crash safety, two servers on one store).

Rules:
- `ServerProcess` runs `podium server` as a real subprocess that a test may SIGKILL and
  start again on the same port and store; each start writes its own log file. Waiting is
  done with trio sleeps, so workers running in the test's trio loop keep going meanwhile.
- Store URLs get a private namespace (Redis `prefix`, PostgreSQL `schema`), removed at the
  end by `store_url_for`'s cleanup, so runs never see each other's data.
- `RecordingClient` is Podium's own `ConductorClient` that writes every hand-out (poll
  and update-v2 answers) and every result report, with monotonic timestamps, to a
  `Ledger`. `LedgerWorker` records every execution. Tests judge the server's workflow
  state against the ledger: it is what the workers really saw and did.
- The workload: `resilience_workflow` chains two SIMPLE types, one of which fails its
  first attempt on purpose (a retry), and a 1 s WAIT (a timer the sweeper must fire);
  each step computes `v * 10 + k`, so the final output of input x is exactly
  `1000 * x + 123` and every step's output names the execution that produced it.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from client.api import ConductorClient
from client.http import TransportError
from core.enums import RetryLogic, TaskResultStatus, TimeoutPolicy
from core.models import Task, TaskDef, TaskResult, WorkflowDef, WorkflowTask

STARTUP_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+) ")

STEP = "rs_step"
FLAKY = "rs_flaky"
WORKER_REFS = ("s1", "f2", "s4")
ALL_REFS = ("s1", "f2", "w3", "s4")

# httpx (encode/httpx#3686, fix pending in #3777) sends request bodies through an async
# generator; when a server is killed mid-request that generator is never exhausted and
# trio warns when it is garbage collected. Harmless here (the request failed and is
# retried), and expected in tests that kill servers on purpose; only that warning is
# silenced.
HTTPX_TRIO_BODY_WARNINGS = [
    pytest.mark.filterwarnings(
        "ignore:Async generator 'httpx._content.ByteStream.__aiter__' was garbage "
        "collected:ResourceWarning"
    ),
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <async_generator object ByteStream\.__aiter__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]


def expected_output(x: int) -> int:
    """The workflow output for input x when every step is applied exactly once."""
    return ((x * 10 + 1) * 10 + 2) * 10 + 3


# ------------------------------------------------------------------------------ servers


@dataclass
class ServerProcess:
    """One `podium server` that can be killed and restarted on the same port and store."""

    store_url: str
    folder: Path
    name: str = "server"
    engine_options: Sequence[str] = ()
    port: int = 0
    proc: trio.Process | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> float:
        """Spawn the server and wait for /health; returns seconds from spawn to healthy."""
        self.starts += 1
        log_path = self.folder / f"{self.name}-{self.starts}.log"
        self.logs.append(log_path)
        command = [
            str(Path(sys.executable).parent / "podium"),
            "server",
            "--port",
            str(self.port),
            "--store",
            self.store_url,
        ]
        for option in self.engine_options:
            command += ["--engine", option]
        began = time.monotonic()
        with log_path.open("wb") as log:
            self.proc = await trio.lowlevel.open_process(
                command, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT
            )
        with trio.fail_after(STARTUP_TIMEOUT_S):
            while True:
                match = _LISTENING.search(log_path.read_text(errors="replace"))
                if match:
                    self.port = int(match.group(1))
                    break
                if self.proc.poll() is not None:
                    pytest.fail(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
                await trio.sleep(0.02)
            async with httpx.AsyncClient() as http:
                while True:
                    try:
                        response = await http.get(f"{self.base_url}/health", timeout=2)
                        if response.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.02)
        return time.monotonic() - began

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, in-flight requests and store calls are cut."""
        assert self.proc is not None, f"{self.name} was never started"
        assert self.proc.poll() is None, f"{self.name} is not running"
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int:
        """SIGTERM and wait (graceful); returns the exit status."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(20):
                await proc.wait()
        if proc.poll() is None:
            proc.kill()
            await proc.wait()
            pytest.fail(f"{self.name} ignored SIGTERM:\n{self.log()}")
        return await proc.wait()

    async def ensure_dead(self) -> None:
        """For `finally` blocks: SIGKILL the process if it is still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with trio.CancelScope(shield=True):
                await self.proc.wait()

    def log(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-6000:]}" for p in self.logs
        )


@asynccontextmanager
async def store_url_for(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A store URL on a private namespace for `backend` (sqlite, redis, postgres);
    Redis and PostgreSQL skip when absent (fail under CI=true) and are cleaned up."""
    from tests.server.remote_stores import drop_postgres_schema, drop_redis_prefix, with_query

    tag = uuid.uuid4().hex[:10]
    if backend == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        yield f"sqlite:///{tmp_path / 'db' / 'podium.db'}"
    elif backend == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        prefix = f"podium-resilience-{tag}"
        try:
            yield with_query(redis_url, prefix=prefix)
        finally:
            await drop_redis_prefix(redis_url, prefix)
    elif backend == "postgres":
        postgres_dsn: str = request.getfixturevalue("postgres_dsn")
        schema = f"resilience_{tag}"
        try:
            yield with_query(postgres_dsn, schema=schema)
        finally:
            await drop_postgres_schema(postgres_dsn, schema)
    else:
        raise ValueError(backend)


# ------------------------------------------------------------------------------- ledger


@dataclass(frozen=True)
class Handout:
    task_id: str
    workflow_id: str
    ref: str
    retry_count: int
    poll_count: int
    scheduled_time: int  # server wall clock, ms
    worker_id: str
    server: str
    at: float  # monotonic
    wall_ms: int


@dataclass(frozen=True)
class Execution:
    task_id: str
    workflow_id: str
    ref: str
    retry_count: int
    exec_id: str
    completed: bool


@dataclass(frozen=True)
class Report:
    task_id: str
    status: str
    exec_id: str | None
    server: str
    sent_at: float
    done_at: float
    accepted: bool


@dataclass
class Ledger:
    """What the workers saw and did (appended from the one trio thread)."""

    handouts: list[Handout] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)

    def accepted_completions(self) -> int:
        return sum(1 for r in self.reports if r.accepted and r.status == "COMPLETED")

    def accepted_exec_ids(self) -> set[str]:
        return {r.exec_id for r in self.reports if r.accepted and r.exec_id is not None}

    def sent_exec_ids(self) -> set[str]:
        return {r.exec_id for r in self.reports if r.exec_id is not None}

    def unreported(self, refs: frozenset[str] | None = None) -> set[str]:
        """Task ids handed out (optionally of these refs) with no report sent yet."""
        sent = {r.task_id for r in self.reports}
        return {
            h.task_id
            for h in self.handouts
            if h.task_id not in sent and (refs is None or h.ref in refs)
        }

    def leases(self) -> dict[str, list[tuple[float, float, Handout]]]:
        """Per task id: (handed out, first accepted report after it or +inf, handout)."""
        accepted: dict[str, list[float]] = {}
        for r in self.reports:
            if r.accepted:
                accepted.setdefault(r.task_id, []).append(r.done_at)
        out: dict[str, list[tuple[float, float, Handout]]] = {}
        for h in self.handouts:
            ends = [t for t in accepted.get(h.task_id, []) if t >= h.at]
            out.setdefault(h.task_id, []).append((h.at, min(ends, default=float("inf")), h))
        for spans in out.values():
            spans.sort(key=lambda span: span[0])
        return out


class RecordingClient(ConductorClient):
    """Podium's API client, writing hand-outs and result reports to a ledger."""

    def __init__(self, server_url: str, ledger: Ledger, server: str) -> None:
        """Args: the server's URL, the ledger to write to, the server's label in it."""
        super().__init__(server_url, timeout_s=10)
        self.ledger = ledger
        self.server = server

    def _handed(self, task: Task, worker_id: str | None) -> None:
        self.ledger.handouts.append(
            Handout(
                task_id=task.task_id,
                workflow_id=task.workflow_instance_id,
                ref=task.reference_task_name,
                retry_count=task.retry_count,
                poll_count=task.poll_count,
                scheduled_time=task.scheduled_time,
                worker_id=worker_id or "",
                server=self.server,
                at=time.monotonic(),
                wall_ms=time.time_ns() // 1_000_000,
            )
        )

    async def batch_poll(
        self,
        task_type: str,
        *,
        count: int = 1,
        timeout_ms: int = 100,
        worker_id: str | None = None,
        domain: str | None = None,
    ) -> list[Task]:
        tasks = await super().batch_poll(
            task_type, count=count, timeout_ms=timeout_ms, worker_id=worker_id, domain=domain
        )
        for task in tasks:
            self._handed(task, worker_id)
        return tasks

    def _report(self, result: TaskResult, sent: float, accepted: bool) -> None:
        exec_id = (result.output_data or {}).get("execId")
        self.ledger.reports.append(
            Report(
                task_id=result.task_id,
                status=result.status.value,
                exec_id=exec_id if isinstance(exec_id, str) else None,
                server=self.server,
                sent_at=sent,
                done_at=time.monotonic(),
                accepted=accepted,
            )
        )

    async def update_task_v2(self, result: TaskResult) -> Task | None:
        sent = time.monotonic()
        try:
            task = await super().update_task_v2(result)
        except BaseException:
            self._report(result, sent, accepted=False)
            raise
        self._report(result, sent, accepted=True)
        if task is not None:
            worker = result.worker_id if isinstance(result.worker_id, str) else None
            self._handed(task, worker)
        return task

    async def update_task(self, result: TaskResult) -> str:
        sent = time.monotonic()
        try:
            task_id = await super().update_task(result)
        except BaseException:
            self._report(result, sent, accepted=False)
            raise
        self._report(result, sent, accepted=True)
        return task_id


class LedgerWorker:
    """Runs `rs_step` / `rs_flaky`: output `v * 10 + k` tagged with a fresh execution id;
    `rs_flaky` fails every first attempt (retryCount 0) on purpose."""

    def __init__(self, task_type: str, ledger: Ledger, work_s: float = 0.02) -> None:
        self.task_definition_name = task_type
        self.ledger = ledger
        self.work_s = work_s

    async def execute(self, task: Task) -> TaskResult:
        await trio.sleep(self.work_s)  # a little work, so kills land with tasks in flight
        exec_id = uuid.uuid4().hex
        fail = self.task_definition_name == FLAKY and task.retry_count == 0
        self.ledger.executions.append(
            Execution(
                task_id=task.task_id,
                workflow_id=task.workflow_instance_id,
                ref=task.reference_task_name,
                retry_count=task.retry_count,
                exec_id=exec_id,
                completed=not fail,
            )
        )
        data = task.input_data
        if fail:
            return TaskResult(
                workflow_instance_id=task.workflow_instance_id,
                task_id=task.task_id,
                status=TaskResultStatus.FAILED,
                reason_for_incompletion="first attempt fails on purpose",
                output_data={"execId": exec_id},
            )
        return TaskResult(
            workflow_instance_id=task.workflow_instance_id,
            task_id=task.task_id,
            status=TaskResultStatus.COMPLETED,
            output_data={"v": int(data["v"]) * 10 + int(data["k"]), "execId": exec_id},
        )


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Check `predicate` every few ms until it holds (state lives in the ledger or in
    another process, so there is no event to wait on); fail naming `what` on timeout."""
    with trio.move_on_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling state another party changes
            await trio.sleep(0.002)
        return
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


# ---------------------------------------------------------------------------- workload


def task_defs(response_timeout_s: int) -> list[TaskDef]:
    return [
        TaskDef(
            name=name,
            retry_count=3,
            retry_logic=RetryLogic.FIXED,
            retry_delay_seconds=0,
            timeout_seconds=60,
            response_timeout_seconds=response_timeout_s,
            timeout_policy=TimeoutPolicy.RETRY,
            owner_email="resilience@example.com",
        )
        for name in (STEP, FLAKY)
    ]


def resilience_workflow(name: str) -> WorkflowDef:
    def simple(task_type: str, ref: str, v: Any, k: int) -> WorkflowTask:
        return WorkflowTask(
            name=task_type, task_reference_name=ref, input_parameters={"v": v, "k": k}
        )

    return WorkflowDef(
        name=name,
        version=1,
        schema_version=2,
        owner_email="resilience@example.com",
        tasks=[
            simple(STEP, "s1", "${workflow.input.x}", 1),
            simple(FLAKY, "f2", "${s1.output.v}", 2),
            WorkflowTask(
                name="w3",
                task_reference_name="w3",
                type="WAIT",
                input_parameters={"duration": "1 seconds"},
            ),
            simple(STEP, "s4", "${f2.output.v}", 3),
        ],
        output_parameters={"v": "${s4.output.v}"},
    )


async def wait_all_terminal(
    client: ConductorClient, workflow_ids: Sequence[str], timeout_s: float
) -> dict[str, Any]:
    """Poll until every workflow ended; returns {id: Workflow}. Fails after timeout_s,
    naming the workflows still running and their pending tasks."""
    pending = set(workflow_ids)
    done: dict[str, Any] = {}
    deadline = trio.current_time() + timeout_s
    while pending:
        for workflow_id in sorted(pending):
            try:
                wf = await client.get_workflow(workflow_id, include_tasks=True)
            except TransportError:
                continue
            if wf.status.value not in ("RUNNING", "PAUSED"):
                done[workflow_id] = wf
                pending.discard(workflow_id)
        if not pending:
            break
        if trio.current_time() > deadline:
            stuck = []
            for workflow_id in sorted(pending)[:5]:
                wf = await client.get_workflow(workflow_id, include_tasks=True)
                stuck.append(
                    f"{workflow_id}: "
                    + ", ".join(
                        f"{t.reference_task_name}#{t.retry_count}={t.status.value}"
                        for t in wf.tasks
                    )
                )
            pytest.fail(f"{len(pending)} workflows still running:\n" + "\n".join(stuck))
        await trio.sleep(0.25)
    return done


# ----------------------------------------------------------------------------- checks


@dataclass
class StateFindings:
    """What the final workflow state says, per workflow, once checked against the ledger."""

    timed_out_rows: int = 0  # rows the sweeper timed out (results lost with a server)
    lost_executions: int = 0  # executions of rows that timed out: the work was redone
    ignored_results: int = 0  # accepted results of rows that had already timed out
    resent_after_failure: int = 0  # task ids whose report failed, then was accepted
    # Results the server applied although the worker never saw an answer (the server
    # died after its commit, before replying, and the worker gave up).
    applied_unacknowledged: int = 0


def check_workflows(done: dict[str, Any], inputs: dict[str, int], ledger: Ledger) -> StateFindings:
    """Assert each workflow COMPLETED with the exact output, each step applied exactly
    once (one COMPLETED row per ref, its output from one execution whose result
    a worker sent), retry chains well formed, and no task id executed more often than
    it was handed out. Returns counts of the recovery paths taken."""
    accepted = ledger.accepted_exec_ids()
    sent = ledger.sent_exec_ids()
    executions = {e.exec_id: e for e in ledger.executions}
    handouts_per_task: dict[str, int] = {}
    for h in ledger.handouts:
        handouts_per_task[h.task_id] = handouts_per_task.get(h.task_id, 0) + 1
    runs_per_task: dict[str, int] = {}
    for e in ledger.executions:
        runs_per_task[e.task_id] = runs_per_task.get(e.task_id, 0) + 1
    findings = StateFindings()
    for workflow_id, wf in done.items():
        x = inputs[workflow_id]
        where = f"workflow {workflow_id} (x={x})"
        assert wf.status.value == "COMPLETED", f"{where}: {wf.status} {wf.reason_for_incompletion}"
        assert wf.output == {"v": expected_output(x)}, f"{where}: output {wf.output}"
        rows: dict[str, list[Any]] = {}
        for t in wf.tasks:
            rows.setdefault(t.reference_task_name, []).append(t)
        assert sorted(rows) == sorted(ALL_REFS), f"{where}: refs {sorted(rows)}"
        partial = {"s1": x * 10 + 1, "f2": (x * 10 + 1) * 10 + 2, "s4": expected_output(x)}
        for ref, ref_rows in rows.items():
            ref_rows.sort(key=lambda t: t.retry_count)
            completed = [t for t in ref_rows if t.status.value == "COMPLETED"]
            assert len(completed) == 1, f"{where}: {ref} completed {len(completed)} times"
            assert ref_rows[-1] is completed[0], f"{where}: {ref} did not end on its success"
            assert [t.retry_count for t in ref_rows] == list(range(len(ref_rows))), where
            for before, after in itertools.pairwise(ref_rows):
                assert after.retried_task_id == before.task_id, f"{where}: {ref} chain broken"
            if ref == "w3":
                assert len(ref_rows) == 1, f"{where}: the WAIT ran {len(ref_rows)} times"
                continue
            failures = [t.status.value for t in ref_rows[:-1]]
            if ref == "f2":
                # The first attempt fails on purpose (or lost its result to a crash).
                assert failures[:1] in (["FAILED"], ["TIMED_OUT"]), f"{where}: f2 {failures}"
                assert failures.count("FAILED") == 1 or failures[0] == "TIMED_OUT", where
            # Any other attempt that did not succeed lost its result to a crash.
            assert set(failures) <= {"FAILED", "TIMED_OUT"}, f"{where}: {ref} {failures}"
            assert failures.count("FAILED") <= (ref == "f2"), f"{where}: {ref} {failures}"
            findings.timed_out_rows += failures.count("TIMED_OUT")
            row = completed[0]
            assert row.output_data["v"] == partial[ref], f"{where}: {ref} output {row.output_data}"
            exec_id = row.output_data["execId"]
            assert exec_id in sent, f"{where}: {ref} holds a result no worker sent"
            findings.applied_unacknowledged += exec_id not in accepted
            run = executions[exec_id]
            assert (run.task_id, run.retry_count) == (row.task_id, row.retry_count), where
            for t in ref_rows:
                handed = handouts_per_task.get(t.task_id, 0)
                assert handed <= t.poll_count, f"{where}: {t.task_id} handed out {handed}x"
                assert runs_per_task.get(t.task_id, 0) <= max(handed, 1), (
                    f"{where}: {t.task_id} executed more often than handed out"
                )
    row_ids = {t.task_id for wf in done.values() for t in wf.tasks}
    timed_out = {
        t.task_id for wf in done.values() for t in wf.tasks if t.status.value == "TIMED_OUT"
    }
    for e in ledger.executions:
        assert e.task_id in row_ids, f"executed task {e.task_id} is in no workflow"
        assert runs_per_task[e.task_id] == 1, f"task {e.task_id} executed twice"
        findings.lost_executions += e.task_id in timed_out
    failed_first: set[str] = set()
    for r in ledger.reports:
        if not r.accepted:
            failed_first.add(r.task_id)
        elif r.task_id in failed_first:
            findings.resent_after_failure += 1
            failed_first.discard(r.task_id)
    for r in ledger.reports:
        if r.accepted and r.status == "COMPLETED":
            assert r.task_id in row_ids, f"result accepted for unknown task {r.task_id}"
            findings.ignored_results += r.task_id in timed_out
    return findings


def assert_no_overlapping_leases(ledger: Ledger) -> int:
    """No task id is held by two workers at once; returns how many task ids were
    handed out more than once (one after the other)."""
    repeated = 0
    for task_id, spans in ledger.leases().items():
        if len(spans) > 1:
            repeated += 1
        for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans):
            assert start_b >= end_a, (
                f"task {task_id} handed to {b.worker_id} via {b.server} (pollCount "
                f"{b.poll_count}) while {a.worker_id} via {a.server} still held it"
            )
            assert b.poll_count > a.poll_count, f"task {task_id}: pollCount did not grow"
    return repeated
