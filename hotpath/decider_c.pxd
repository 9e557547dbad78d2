# Cython declarations augmenting hotpath/decider_py.py, compiled as hotpath.decider_c.
# Rules: types only, no logic; every name here exists in decider_py.py with the same
# signature. Plan nodes and task settings come from hotpath.plan_c at C level; the hot
# loop's helpers are `cdef` (invisible to Python), the entry points `cpdef`.

cimport cython

from hotpath.plan_c cimport (
    Node,
    Plan,
    TaskCfg,
    build_ctx,
    dynamic_cfg,
    node_cfg,
    queue_name,
    resolve_domain,
    retry_delay_s,
    row_cfg,
    task_queue,
)

cdef int K_WORKER, K_SWITCH, K_FORK, K_JOIN, K_DYN_FORK, K_EXCL_JOIN, K_DO_WHILE, K_DYNAMIC
cdef object SCHEDULED, IN_PROGRESS, COMPLETED, COMPLETED_WITH_ERRORS, FAILED
cdef object FAILED_WITH_TERMINAL_ERROR, TIMED_OUT, CANCELED, SKIPPED
cdef object WF_RUNNING, WF_PAUSED, WF_FAILED, WF_TIMED_OUT, WF_TERMINATED
cdef object R_IN_PROGRESS, R_COMPLETED, R_FAILED, R_FWTE, R_CANCELED
cdef object P_RETRY, P_TIME_OUT_WF, P_ALERT_ONLY


cdef class Run:
    cdef public object wf
    cdef public object env
    cdef public long long now
    cdef public Plan plan
    cdef public list actions
    cdef public list added
    cdef public list removed
    cdef public bint changed
    cdef public dict ref_index
    cdef public dict skipped
    cdef public long long epoch
    cdef public dict eval_epochs


cdef class Scope:
    cdef public str suffix
    cdef public object iteration
    cdef public str loop_scope
    cdef public object prev
    cdef public object delay_s


cdef Node row_node(Run run, object t)
cdef object latest_row(Run run, str ref)
@cython.locals(seq=Py_ssize_t, n=Py_ssize_t)
cpdef object find_task(object wf, str task_id)
cdef object _opt(object value)
cdef str task_id_for(object wf, object seq)
cdef object render_template(Run run, object template, str task_id)
cdef dict render_task_input(Run run, Node node, str task_id)
@cython.locals(seq=Py_ssize_t)
cdef object append_row(Run run, Node node, str ref, str task_type, object status, Scope scope,
                     dict input_data)
@cython.locals(kind=int)
cdef object schedule_node(Run run, Node node, str suffix, object iteration, str loop_scope,
                     object prev, object delay_s)
@cython.locals(kind=int)
cdef object retry_row(Run run, Node node, str ref, Scope scope)
@cython.locals(j=Py_ssize_t, tasks=list)
cdef dict skipped_rows(Run run)
cdef object schedule_worker(Run run, Node node, str ref, str suffix, object iteration,
                            str loop_scope, object prev, object delay_s)
cdef object dynamic_worker_row(Run run, Node node, str ref, str name, Scope scope)
@cython.locals(seq=Py_ssize_t, delay=Py_ssize_t)
cdef object worker_row(Run run, Node node, TaskCfg cfg, str task_type, str def_name, str ref,
                       object iteration, str loop_scope, object prev, object delay_s)
@cython.locals(first=Node, join=Node)
cdef object schedule_fork(Run run, Node node, str ref, str suffix, object iteration,
                          str loop_scope)
cdef object add_join_row(Run run, Node node, str ref, Scope scope, list join_on)
cdef Scope row_scope(object t, Node node)
@cython.locals(n=Node, nxt=Node, parent=Node)
cdef Node next_node(Node node)
@cython.locals(nxt=Node)
cdef object schedule_successor(Run run, object t, Node node)
@cython.locals(i=Py_ssize_t, n=Py_ssize_t, j=Py_ssize_t, active=Py_ssize_t, tasks=list,
               operators=list)
cdef object run_loop(Run run)
@cython.locals(epochs=dict)
cdef bint stale_operators(Run run, list operators) except -1
@cython.locals(kind=int)
cdef object after_success(Run run, object t, Node node)
@cython.locals(epochs=dict, seen=Py_ssize_t, changed=bint)
cdef bint evaluate_operator(Run run, object t) except -1
@cython.locals(done=bint, failed=bint, all_canceled=bint, with_errors=bint, output=dict,
               reasons=list)
cdef bint evaluate_join(Run run, object t) except -1
@cython.locals(cfg=TaskCfg)
cdef object handle_failure(Run run, object t, Node node)
@cython.locals(kind=int, cfg=TaskCfg, enforced=bint)
cdef object arm_timer(Run run, object t, Node node)
cdef object _min_time(object best, object when)
@cython.locals(j=Py_ssize_t, tasks=list)
cdef object next_wake(Run run)
cdef bint on_task_polled(Run run, object event) except -1
@cython.locals(node=Node)
cdef bint on_task_update(Run run, object event) except -1
@cython.locals(run=Run, go=bint)
cpdef object decide(object workflow, object event, object env, object now_ms)
