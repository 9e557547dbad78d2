# Cython declarations augmenting hotpath/decider_py.py, compiled as hotpath.decider_c.
# Rules: types only, no logic; every name here exists in decider_py.py with the same
# signature. Plan nodes and task settings come from hotpath.plan_c at C level; the hot
# loop's helpers are `cdef` (invisible to Python), the entry points `cpdef`.

cimport cython

from hotpath.plan_c cimport (
    Node,
    Plan,
    TaskCfg,
    dynamic_cfg,
    node_cfg,
    retry_delay_s,
    row_cfg,
    task_queue,
)
from hotpath.rows_c cimport (
    Run,
    Scope,
    _opt,
    append_row,
    arm_timer,
    find_task,
    latest_row,
    next_wake,
    render_template,
    row_node,
    row_scope,
    start_run,
    worker_row,
)
from hotpath.structs cimport (
    Task as TaskRec,
    TaskPolled as TaskPolledEvent,
    TaskUpdate as TaskUpdateEvent,
    Workflow as WorkflowRec,
)

cdef int K_WORKER, K_SWITCH, K_FORK, K_JOIN, K_DYN_FORK, K_EXCL_JOIN, K_DO_WHILE
cdef int K_DYNAMIC
cdef object SCHEDULED, IN_PROGRESS, COMPLETED, COMPLETED_WITH_ERRORS, FAILED
cdef object FAILED_WITH_TERMINAL_ERROR, TIMED_OUT, CANCELED, SKIPPED
cdef object WF_RUNNING, WF_PAUSED, WF_FAILED, WF_TIMED_OUT, WF_TERMINATED
cdef object R_IN_PROGRESS, R_COMPLETED, R_FAILED, R_FWTE, R_CANCELED
cdef object P_RETRY, P_TIME_OUT_WF, P_ALERT_ONLY
cdef object TASK_UPDATE, TASK_POLLED, QUEUE_TASK, DECISION
cdef frozenset OPERATOR_TYPES
cdef dict NO_ROWS


cdef class DecisionRun(Run):
    pass


@cython.locals(kind=int, row=TaskRec)
cdef object schedule_node(Run run, Node node, str suffix, object iteration,
                          str loop_scope, TaskRec prev, object delay_s)


@cython.locals(kind=int)
cdef object retry_row(Run run, Node node, str ref, Scope scope)


@cython.locals(j=Py_ssize_t, tasks=list, t=TaskRec)
cdef dict skipped_rows(Run run)


cdef object schedule_worker(Run run, Node node, str ref, str suffix, object iteration,
                            str loop_scope, TaskRec prev, object delay_s)


cdef object dynamic_worker_row(Run run, Node node, str ref, str name, Scope scope)


@cython.locals(first=Node, join=Node, fork=TaskRec)
cdef object schedule_fork(Run run, Node node, str ref, str suffix, object iteration,
                          str loop_scope)


cdef object add_join_row(Run run, Node node, str ref, Scope scope, list join_on)


@cython.locals(n=Node, nxt=Node, parent=Node)
cdef Node next_node(Node node)


@cython.locals(nxt=Node)
cdef object schedule_successor(Run run, TaskRec t, Node node)


@cython.locals(i=Py_ssize_t, n=Py_ssize_t, j=Py_ssize_t, active=Py_ssize_t, tasks=list,
               operators=list, wf=WorkflowRec, t=TaskRec)
cdef object run_loop(Run run)


@cython.locals(epochs=dict, t=TaskRec)
cdef bint stale_operators(Run run, list operators) except -1


@cython.locals(kind=int)
cdef object after_success(Run run, TaskRec t, Node node)


@cython.locals(epochs=dict, seen=Py_ssize_t, changed=bint)
cdef bint evaluate_operator(Run run, TaskRec t) except -1


@cython.locals(done=bint, failed=bint, all_canceled=bint, with_errors=bint, output=dict,
               reasons=list, row=TaskRec)
cdef bint evaluate_join(Run run, TaskRec t) except -1


@cython.locals(cfg=TaskCfg)
cdef object handle_failure(Run run, TaskRec t, Node node)


@cython.locals(t=TaskRec)
cdef bint on_task_polled(Run run, TaskPolledEvent event) except -1


@cython.locals(node=Node, t=TaskRec, wf=WorkflowRec)
cdef bint on_task_update(Run run, TaskUpdateEvent event) except -1


@cython.locals(run=Run, go=bint, workflow=WorkflowRec)
cpdef object decide(object workflow, object event, object env, object now_ms)
