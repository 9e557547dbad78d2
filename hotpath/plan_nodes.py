"""Kind codes of compiled plan nodes, shared by the decider core and the task handlers.

Rules: plain ints, one per family of task types with the same scheduling behaviour. The
compiled decider redeclares them as C constants in decider_c.pxd; tests/hotpath checks
that both agree, so the codes can never drift.
"""

from __future__ import annotations

K_WORKER = 0  # SIMPLE and every unknown type: polled by workers
K_SWITCH = 1  # SWITCH and legacy DECISION
K_FORK = 2  # FORK_JOIN (static)
K_JOIN = 3
K_DYN_FORK = 4  # FORK_JOIN_DYNAMIC
K_EXCL_JOIN = 5  # EXCLUSIVE_JOIN
K_DO_WHILE = 6
K_SUB_WORKFLOW = 7
K_ASYNC_SYSTEM = 8  # HTTP, START_WORKFLOW, KAFKA_PUBLISH: RunSystemTask
K_DYNAMIC = 9
K_TERMINATE = 10
K_SET_VARIABLE = 11
K_WAIT = 12
K_HUMAN = 13
K_SCRIPT = 14  # INLINE, LAMBDA, JSON_JQ_TRANSFORM: EvaluateScript
K_EVENT = 15
K_NOOP = 16

KIND_BY_TYPE = {
    "SWITCH": K_SWITCH,
    "DECISION": K_SWITCH,
    "FORK_JOIN": K_FORK,
    "JOIN": K_JOIN,
    "FORK_JOIN_DYNAMIC": K_DYN_FORK,
    "EXCLUSIVE_JOIN": K_EXCL_JOIN,
    "DO_WHILE": K_DO_WHILE,
    "SUB_WORKFLOW": K_SUB_WORKFLOW,
    "HTTP": K_ASYNC_SYSTEM,
    "START_WORKFLOW": K_ASYNC_SYSTEM,
    "KAFKA_PUBLISH": K_ASYNC_SYSTEM,
    "DYNAMIC": K_DYNAMIC,
    "TERMINATE": K_TERMINATE,
    "SET_VARIABLE": K_SET_VARIABLE,
    "WAIT": K_WAIT,
    "HUMAN": K_HUMAN,
    "INLINE": K_SCRIPT,
    "LAMBDA": K_SCRIPT,
    "JSON_JQ_TRANSFORM": K_SCRIPT,
    "EVENT": K_EVENT,
    "NOOP": K_NOOP,
}

# Built-in flow operators: never retried by the decider (Conductor's rule).
NEVER_RETRIED = frozenset({K_SWITCH, K_FORK, K_JOIN, K_DYN_FORK, K_EXCL_JOIN, K_DO_WHILE})
