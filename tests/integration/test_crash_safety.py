"""Crash safety: SIGKILL the server mid-run, restart it on the same store and port, and
every workflow completes with each task's work applied exactly once.

For SQLite, Redis and PostgreSQL in turn: a real `podium server` process, workers of
Podium's SDK (client.TaskRunner) in the test's trio loop, WORKFLOWS workflows of
`rs_step -> rs_flaky (fails once) -> WAIT 1 s -> rs_step`, plus a stream of starts that
runs across the kills. The server is killed twice, at KILL_AT fractions of the worker
results, with tasks in flight; a start cut by a kill leaves a whole workflow or none.
Conductor's model is at-least-once *execution*: a worker may run a task again when its
result died with the server (the response timeout, 2 s here, re-offers it as a retry);
the workflow *state* must still apply each step once. The ledger
(tests/integration/resilience_support.py) is what the workers saw; the state is checked
against it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from client.api import ConductorApiError, ConductorClient
from client.http import TransportError
from client.runner import Backoff, TaskRunner
from tests.integration.resilience_support import (
    FLAKY,
    HTTPX_TRIO_BODY_WARNINGS,
    STEP,
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

WORKFLOWS = 40
KILL_AT = (0.3, 0.65)
# Messages popped by the killed process come back after these (Conductor-like 60 s by
# default); short here so the test measures recovery, not the default's patience. With
# the defaults a kill between a pop and its commit delays that task (or timer) ~60 s.
ENGINE = ("task_unack_ms=3000", "sweep_unack_ms=3000")
RESPONSE_TIMEOUT_S = 2
FLAKY_WORK_S = 0.3  # long enough that a kill finds an rs_flaky task mid-execution
FLAKY_REFS = frozenset({"f2"})
STEP_REFS = frozenset({"s1", "s4"})
WORKFLOW = "rs_crash"
STARTS_EVERY_S = 0.1


pytestmark = HTTPX_TRIO_BODY_WARNINGS


class Starter:
    """Starts a workflow every STARTS_EVERY_S until told to stop, across the kills: each
    start either answers an id (kept in `inputs`) or is cut (its x kept in `cut`)."""

    def __init__(self, server_url: str, inputs: dict[str, int]) -> None:
        self.server_url = server_url
        self.inputs = inputs
        self.cut: set[int] = set()
        self.attempts = 0
        self.stop = False
        self.finished = False

    async def run(self) -> None:
        x = 1000
        async with ConductorClient(self.server_url, timeout_s=5) as client:
            while not self.stop:
                self.attempts += 1
                try:
                    self.inputs[await client.start_workflow_by_name(WORKFLOW, {"x": x})] = x
                except (TransportError, ConductorApiError):
                    self.cut.add(x)
                x += 1
                await trio.sleep(STARTS_EVERY_S)
        self.finished = True


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
async def test_sigkill_mid_run_loses_nothing_and_applies_each_task_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with store_url_for(backend, request) as store_url:
        server = ServerProcess(store_url, tmp_path, engine_options=ENGINE)
        await server.start()
        ledger = Ledger()
        restarts: list[float] = []
        in_flight_at_kill: list[int] = []
        try:
            async with (
                ConductorClient(server.base_url) as admin,
                RecordingClient(server.base_url, ledger, "A") as patient_client,
                RecordingClient(server.base_url, ledger, "A") as impatient_client,
            ):
                await admin.register_task_defs(task_defs(RESPONSE_TIMEOUT_S))
                await admin.register_workflow_def(resilience_workflow(WORKFLOW), overwrite=True)
                quick = Backoff(initial_s=0.05, max_s=0.5)
                # rs_step results are retried until the server is back (they land after
                # the restart); rs_flaky results are given up after ~0.35 s, so those in
                # flight at a kill are lost and must come back by the response timeout.
                patient = TaskRunner(
                    [LedgerWorker(STEP, ledger)],
                    server.base_url,
                    concurrency=4,
                    worker_id="patient",
                    poll_timeout_ms=1000,
                    backoff=quick,
                    update_attempts=200,
                    client=patient_client,
                )
                impatient = TaskRunner(
                    [LedgerWorker(FLAKY, ledger, work_s=FLAKY_WORK_S)],
                    server.base_url,
                    concurrency=8,
                    worker_id="impatient",
                    poll_timeout_ms=1000,
                    backoff=quick,
                    update_attempts=3,
                    client=impatient_client,
                )
                async with trio.open_nursery() as nursery:
                    await nursery.start(patient.run)
                    await nursery.start(impatient.run)
                    inputs: dict[str, int] = {}
                    for x in range(WORKFLOWS):
                        inputs[await admin.start_workflow_by_name(WORKFLOW, {"x": x})] = x
                    total = WORKFLOWS * 3  # accepted COMPLETED worker results, no loss
                    starter = Starter(server.base_url, inputs)
                    nursery.start_soon(starter.run)
                    for fraction in KILL_AT:

                        def kill_now(f: float = fraction) -> bool:
                            # Both kinds mid-execution: their reports will meet a dead
                            # server (rs_step re-sends them, rs_flaky gives them up).
                            return (
                                ledger.accepted_completions() >= f * total
                                and bool(ledger.unreported(FLAKY_REFS))
                                and bool(ledger.unreported(STEP_REFS))
                            )

                        await wait_until(
                            kill_now,
                            60,
                            f"{fraction:.0%} of the worker results, both task types in flight",
                        )
                        in_flight_at_kill.append(len(ledger.unreported()))
                        await server.kill()
                        await trio.sleep(0.2)  # workers find the server gone
                        restarts.append(await server.start())
                    await trio.sleep(0.3)
                    starter.stop = True
                    await wait_until(lambda: starter.finished, 10, "the starter to stop")
                    # Starts cut by a kill may or may not have created their workflow;
                    # whichever did must be whole and run to the end like the others.
                    found = await admin.search_workflows(f"workflowType = '{WORKFLOW}'", size=1000)
                    found_ids = {w.workflow_id for w in found.results}
                    assert set(inputs) <= found_ids, "an acknowledged start is missing"
                    created_anyway = found_ids - set(inputs)
                    for workflow_id in created_anyway:
                        wf = await admin.get_workflow(workflow_id, include_tasks=False)
                        assert wf.input["x"] in starter.cut, f"unexpected workflow {wf.input}"
                        inputs[workflow_id] = wf.input["x"]
                    began = time.monotonic()
                    done = await wait_all_terminal(admin, list(inputs), timeout_s=90)
                    recovery_s = time.monotonic() - began
                    patient.stop()
                    impatient.stop()
            assert await server.stop() == 0, server.log()
        finally:
            await server.ensure_dead()

    findings = check_workflows(done, inputs, ledger)
    repeated_handouts = assert_no_overlapping_leases(ledger)
    # The results lost with the server (the impatient runner gave them up) came back as
    # retries after the response timeout: executed again, applied once.
    assert findings.lost_executions >= 1, "no result was lost: the kills missed every task"
    assert findings.timed_out_rows >= findings.lost_executions
    # Results of tasks in flight at a kill were re-sent and accepted after the restart.
    assert findings.resent_after_failure >= 1
    assert server.starts == 1 + len(KILL_AT)
    assert "Traceback" not in server.log(), server.log()
    print(
        f"\n[crash-safety {backend}] workflows={len(inputs)} (streamed starts "
        f"{starter.attempts}, cut {len(starter.cut)}, of which created "
        f"{len(created_anyway)}) kills={len(KILL_AT)} "
        f"in_flight_at_kill={in_flight_at_kill} restart_s={[round(r, 2) for r in restarts]} "
        f"executions={len(ledger.executions)} lost_results_re_executed="
        f"{findings.lost_executions} timed_out_rows={findings.timed_out_rows} "
        f"results_resent_after_restart={findings.resent_after_failure} "
        f"late_results_ignored={findings.ignored_results} "
        f"applied_but_unacknowledged={findings.applied_unacknowledged} "
        f"task_ids_handed_out_twice={repeated_handouts} "
        f"tail_after_last_restart_s={recovery_s:.1f}"
    )
