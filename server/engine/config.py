"""Engine tuning knobs, with Conductor's defaults where Conductor has one.

Rules: every duration is in milliseconds and named `*_ms`; the REST layer or the CLI
builds one EngineConfig and hands it to Engine. Nothing here is read from the
environment: configuration is explicit.
"""

from __future__ import annotations

import msgspec


class EngineConfig(msgspec.Struct, kw_only=True, frozen=True):
    # Visibility timeout of a popped task message: a poller that crashes before its commit
    # leaves the message to reappear after this long (crash safety, spec 5.1).
    task_unack_ms: int = 60_000
    # Visibility timeout of a workflow id popped from the decider queue by the sweeper.
    sweep_unack_ms: int = 60_000
    # Longest time a running workflow waits in the decider queue without a timer
    # (Conductor's maxPostponeDurationSeconds): the repair pass runs at least this often.
    max_postpone_ms: int = 3_600_000
    # How long a message that hit concurrentExecLimit is hidden before it is tried again
    # (Conductor waits taskExecutionPostponeDuration = 60 s; Podium re-checks sooner).
    limit_postpone_ms: int = 1_000
    # Long-poll: upper bound of one wait before the queue is popped again (covers tasks
    # queued by another process or made due by a delay this process did not push).
    poll_recheck_ms: int = 500
    # Batch poll timeout limit (spec 1.3: more than 5 s is a 400).
    max_poll_timeout_ms: int = 5_000
    # Largest `count` a batch poll may ask for.
    max_poll_count: int = 1_000
    # The sweeper pops at most this many due workflows per round.
    sweep_batch: int = 32
    # The sweeper sleeps at most this long between rounds when it knows of no earlier
    # timer (timers pushed by other processes, messages coming back from unack).
    sweeper_max_sleep_ms: int = 1_000
    # Timers due within this horizon wake the sweeper exactly; later ones are found by
    # its periodic pop (at most sweeper_max_sleep_ms late).
    sweeper_exact_horizon_ms: int = 60_000
    # Task/workflow definitions and event handlers are re-read at most this often
    # (Engine.metadata_changed() drops the cache at once).
    metadata_ttl_ms: int = 2_000
    # Optimistic-concurrency retries of one decide before answering 503.
    conflict_retries: int = 20
    # A chain of synchronous system tasks decided in one call stops after this many
    # script evaluations (a runaway DO_WHILE of INLINE tasks), then resumes via the sweeper.
    max_chain: int = 10_000
    # A worker is "active" in a domain for taskToDomain fallback lists this long after its
    # last poll (Conductor's activeWorkerLastPollTimeout).
    active_worker_ms: int = 10_000
    # Poll data is written to the store at most this often per (queue, domain, worker).
    poll_record_interval_ms: int = 1_000
    # Task exec logs kept per task (Conductor's taskExecLogSizeLimit).
    max_logs_per_task: int = 10
    # A decision that starts an async system task (HTTP, START_WORKFLOW) sets the
    # workflow's timer at most this far ahead: if the process dies with the call in
    # flight, a sweep re-offers the task that soon (a live call is never duplicated).
    system_task_recheck_ms: int = 30_000
    # Scripts (INLINE, jq, SWITCH/DO_WHILE/event conditions) run on the trio thread by
    # default (~25 us each); True moves each to a worker thread (~10x the overhead per
    # script) so a slow script (up to its 4 s limit) cannot stall other requests.
    scripts_in_thread: bool = False
    # Default HTTP task timeouts when the task input gives none (spec 3.12).
    http_connect_timeout_ms: int = 3_000
    http_read_timeout_ms: int = 3_000
