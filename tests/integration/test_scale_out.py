"""Two `podium server` processes on one store (Redis, then PostgreSQL): workers split
across both, starts sent to both, every workflow completes, and no task is ever held by
two workers at once.

Each server has its own TaskRunner (Podium's SDK) polling it for both task types, so
every queue has pollers on both servers competing for the same messages; workflow
starts alternate between the servers, and the WAIT timers and retries are decided by
whichever server's sweeper or request gets there first. The workers' ledger
(tests/integration/resilience_support.py) records each hand-out with its time, server
and pollCount and each result report; the final workflow state must agree with it.

Cross-process wake-ups: a long poll on one server is not woken by a commit on the other;
it re-pops the shared queue every `poll_recheck_ms` (500 ms by default), so a task
queued by server A waits at most about that long for an idle poller on server B. The
test prints the hand-out latencies it saw (time from scheduling to hand-out).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import trio

from client.api import ConductorClient
from client.runner import Backoff, TaskRunner
from tests.integration.resilience_support import (
    FLAKY,
    HTTPX_TRIO_BODY_WARNINGS,
    STEP,
    WORKER_REFS,
    Handout,
    Ledger,
    LedgerWorker,
    RecordingClient,
    ServerProcess,
    assert_no_overlapping_leases,
    check_workflows,
    resilience_workflow,
    store_url_for,
    task_defs,
    wait_all_terminal,
    wait_until,
)

WORKFLOWS = 60
# Long enough that no task is re-offered for slowness: every second hand-out of a task
# id would be a double hand-out.
RESPONSE_TIMEOUT_S = 30
WORKFLOW = "rs_scale_out"
HA_WORKFLOWS = 40
HA_RESPONSE_TIMEOUT_S = 2
# Messages the dead server had popped come back after these (60 s by default).
HA_ENGINE = ("task_unack_ms=3000", "sweep_unack_ms=3000")


pytestmark = HTTPX_TRIO_BODY_WARNINGS


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
async def test_two_servers_on_one_store_share_the_work_without_double_handouts(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with store_url_for(backend, request) as store_url:
        servers = {label: ServerProcess(store_url, tmp_path, name=label) for label in "AB"}
        ledger = Ledger()
        try:
            # Started together: on PostgreSQL both migrate the fresh schema at once.
            async with trio.open_nursery() as nursery:
                for server in servers.values():
                    nursery.start_soon(server.start)
            a, b = servers["A"], servers["B"]
            async with (
                ConductorClient(a.base_url) as admin_a,
                ConductorClient(b.base_url) as admin_b,
                RecordingClient(a.base_url, ledger, "A") as client_a,
                RecordingClient(b.base_url, ledger, "B") as client_b,
            ):
                await admin_a.register_task_defs(task_defs(RESPONSE_TIMEOUT_S))
                await admin_b.register_workflow_def(resilience_workflow(WORKFLOW), overwrite=True)
                runners = [
                    TaskRunner(
                        [LedgerWorker(STEP, ledger), LedgerWorker(FLAKY, ledger)],
                        server.base_url,
                        concurrency=3,
                        worker_id=f"worker-{label}",
                        poll_timeout_ms=2000,
                        client=client,
                    )
                    for label, server, client in (("A", a, client_a), ("B", b, client_b))
                ]
                async with trio.open_nursery() as nursery:
                    for runner in runners:
                        await nursery.start(runner.run)
                    inputs: dict[str, int] = {}
                    started_on: dict[str, str] = {}
                    for x in range(WORKFLOWS):
                        label, admin = ("A", admin_a) if x % 2 == 0 else ("B", admin_b)
                        workflow_id = await admin.start_workflow_by_name(WORKFLOW, {"x": x})
                        inputs[workflow_id] = x
                        started_on[workflow_id] = label
                    done = await wait_all_terminal(admin_b, list(inputs), timeout_s=90)
                    for runner in runners:
                        runner.stop()
            for server in servers.values():
                assert await server.stop() == 0, server.log()
        finally:
            for server in servers.values():
                await server.ensure_dead()

    for server in servers.values():
        assert "Traceback" not in server.log(), server.log()
    findings = check_workflows(done, inputs, ledger)
    # No crash here: nothing may time out, be lost, or be re-executed.
    assert findings.timed_out_rows == 0
    assert findings.lost_executions == 0
    assert len(ledger.executions) == WORKFLOWS * 4  # s1, f2 (fails once, then succeeds), s4
    assert assert_no_overlapping_leases(ledger) == 0  # every task id handed out once

    # Per-task bookkeeping: each worker row was polled exactly once, by the worker the
    # ledger says received it, and the server-side pollCount matches the hand-out's.
    handouts = {h.task_id: h for h in ledger.handouts}
    for wf in done.values():
        for t in wf.tasks:
            if t.reference_task_name not in WORKER_REFS:
                continue
            h = handouts[t.task_id]
            assert t.poll_count == 1 == h.poll_count, f"{t.task_id}: pollCount {t.poll_count}"
            assert t.worker_id == h.worker_id, f"{t.task_id}: {t.worker_id} != {h.worker_id}"
            assert (h.retry_count, h.ref) == (t.retry_count, t.reference_task_name)
    assert all(r.accepted for r in ledger.reports), "a result was refused or lost"

    # The work really was shared: both servers handed out tasks, and tasks of workflows
    # started on one server were picked up through the other.
    per_server = {label: sum(h.server == label for h in ledger.handouts) for label in "AB"}
    assert min(per_server.values()) > 0, per_server
    first: dict[str, Handout] = {}
    for h in sorted(ledger.handouts, key=lambda h: h.at):
        first.setdefault(h.workflow_id, h)
    crossed = sum(first[w].server != started_on[w] for w in inputs)
    assert crossed > 0
    latencies = sorted(max(0, h.wall_ms - h.scheduled_time) for h in ledger.handouts)
    print(
        f"\n[scale-out {backend}] workflows={WORKFLOWS} handouts={len(ledger.handouts)} "
        f"per_server={per_server} first_task_on_other_server={crossed} "
        f"handout_latency_ms median={statistics.median(latencies):.0f} "
        f"p95={latencies[int(len(latencies) * 0.95)]} max={latencies[-1]}"
    )


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
async def test_when_one_server_dies_the_other_finishes_every_workflow(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # Server A is SIGKILLed mid-run and never comes back. Its workers' results in flight
    # are lost (they cannot reach A); the store still holds every workflow, so B's sweeper
    # times those tasks out after the response timeout and B's workers run the retries.
    async with store_url_for(backend, request) as store_url:
        servers = {
            label: ServerProcess(store_url, tmp_path, name=label, engine_options=HA_ENGINE)
            for label in "AB"
        }
        ledger = Ledger()
        try:
            for server in servers.values():
                await server.start()
            a, b = servers["A"], servers["B"]
            async with (
                ConductorClient(a.base_url) as admin_a,
                ConductorClient(b.base_url) as admin_b,
                RecordingClient(a.base_url, ledger, "A") as client_a,
                RecordingClient(b.base_url, ledger, "B") as client_b,
            ):
                await admin_a.register_task_defs(task_defs(HA_RESPONSE_TIMEOUT_S))
                await admin_a.register_workflow_def(resilience_workflow(WORKFLOW), overwrite=True)
                runners = {
                    label: TaskRunner(
                        [LedgerWorker(STEP, ledger), LedgerWorker(FLAKY, ledger, work_s=0.1)],
                        server.base_url,
                        concurrency=3,
                        worker_id=f"worker-{label}",
                        poll_timeout_ms=1000,
                        backoff=Backoff(initial_s=0.05, max_s=0.5),
                        update_attempts=3,
                        client=client,
                    )
                    for label, server, client in (("A", a, client_a), ("B", b, client_b))
                }
                async with trio.open_nursery() as nursery:
                    for runner in runners.values():
                        await nursery.start(runner.run)
                    inputs: dict[str, int] = {}
                    for x in range(HA_WORKFLOWS):
                        admin = admin_a if x % 2 == 0 else admin_b
                        inputs[await admin.start_workflow_by_name(WORKFLOW, {"x": x})] = x
                    total = HA_WORKFLOWS * 3

                    def held_through_a() -> set[str]:
                        through_a = {h.task_id for h in ledger.handouts if h.server == "A"}
                        return through_a & ledger.unreported()

                    await wait_until(
                        lambda: (
                            ledger.accepted_completions() >= total // 3 and bool(held_through_a())
                        ),
                        60,
                        "a third of the results with tasks in flight through A",
                    )
                    held_by_a = held_through_a()
                    await a.kill()
                    killed_at = trio.current_time()
                    done = await wait_all_terminal(admin_b, list(inputs), timeout_s=90)
                    finished_after_s = trio.current_time() - killed_at
                    for runner in runners.values():
                        runner.stop()
            assert await b.stop() == 0, b.log()
        finally:
            for server in servers.values():
                await server.ensure_dead()

    assert "Traceback" not in servers["B"].log(), servers["B"].log()
    findings = check_workflows(done, inputs, ledger)
    assert_no_overlapping_leases(ledger)
    # Tasks A's workers held when A died came back through B as retries.
    assert held_by_a, "the kill found no task held through A"
    assert findings.timed_out_rows >= 1
    rows = [t for wf in done.values() for t in wf.tasks]
    timed_out = {t.task_id for t in rows if t.status.value == "TIMED_OUT"}
    servers_of = {h.task_id: h.server for h in ledger.handouts}
    retries = [t for t in rows if t.retried_task_id in timed_out]
    assert len(retries) == len(timed_out)
    assert {servers_of[t.task_id] for t in retries} == {"B"}, "a retry went through dead A"
    print(
        f"\n[one-server-dies {backend}] workflows={HA_WORKFLOWS} held_through_A_at_kill="
        f"{len(held_by_a)} timed_out_rows={findings.timed_out_rows} "
        f"lost_results_re_executed={findings.lost_executions} "
        f"all_done_after_kill_s={finished_after_s:.1f}"
    )
