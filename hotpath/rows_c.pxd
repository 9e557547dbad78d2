# Cython declarations augmenting hotpath/rows_py.py, compiled as hotpath.rows_c.
# Rules: types only, no logic; every name here exists in rows_py.py with the same
# signature. Run and Scope are extension types the decider twin cimports (and extends:
# DecisionRun); the row helpers are cpdef so the decider calls them at C level.

cimport cython

from hotpath.mapping_c cimport Template
from hotpath.plan_c cimport (
    Node,
    Plan,
    TaskCfg,
    build_ctx,
    node_cfg,
    plan_for,
    queue_name,
    resolve_domain,
    row_cfg,
    task_queue,
)
from hotpath.structs cimport (
    DeciderEnv as DeciderEnvRec,
    Task as TaskRec,
    Workflow as WorkflowRec,
    WorkflowTask as WorkflowTaskRec,
)

cdef int K_WORKER, K_DYNAMIC
cdef object SCHEDULED, IN_PROGRESS, WF_RUNNING, P_ALERT_ONLY, QUEUE_TASK, COPY_TASK


cdef class Run:
    cdef public WorkflowRec wf
    cdef public DeciderEnvRec env
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
    cdef public list prunes


cpdef object start_run(Run run, WorkflowRec wf, DeciderEnvRec env, long long now)


cdef class Scope:
    cdef public str suffix
    cdef public long long iteration
    cdef public str loop_scope
    cdef public TaskRec prev
    cdef public long long delay_s


@cython.locals(wt=WorkflowTaskRec, node=Node)
cpdef Node row_node(Run run, TaskRec t)


@cython.locals(index=dict)
cpdef object latest_row(Run run, str ref)


@cython.final
cdef class RefIndex:
    cdef list tasks
    cdef Py_ssize_t size
    cdef dict rows


cdef dict _REF_INDEXES
cdef Py_ssize_t _REF_INDEX_MAX


@cython.locals(entry=RefIndex, rows=dict, n=Py_ssize_t, j=Py_ssize_t, t=TaskRec)
cpdef dict ref_index(list tasks)


@cython.locals(seq=Py_ssize_t, n=Py_ssize_t, tasks=list, t=TaskRec)
cpdef object find_task(WorkflowRec wf, str task_id)


@cython.locals(n=Py_ssize_t, seq=Py_ssize_t, k=Py_ssize_t, ch=Py_UCS4)
cdef Py_ssize_t _seq_of(str task_id) except -1


cpdef object _opt(object value)


cdef tuple _SUFFIXES


@cython.locals(last=TaskRec)
cdef Py_ssize_t next_seq(list tasks) except -1


@cython.locals(workflow_id=str, suffix=str)
cpdef str task_id_for(WorkflowRec wf, Py_ssize_t seq)


cpdef Scope row_scope(TaskRec t, Node node)


cpdef object render_template(Run run, Template template, str task_id)


@cython.locals(cfg=TaskCfg, template=Template, out=dict, defaults=dict)
cpdef dict render_task_input(Run run, Node node, str task_id)


@cython.locals(seq=Py_ssize_t, wf=WorkflowRec, tasks=list, t=TaskRec, prev=TaskRec)
cpdef object append_row(Run run, Node node, str ref, str task_type, object status,
                        Scope scope, dict input_data)


@cython.locals(seq=Py_ssize_t, delay=Py_ssize_t, wf=WorkflowRec, tasks=list, t=TaskRec,
               proto=TaskRec)
cpdef object worker_row(Run run, Node node, TaskCfg cfg, str task_type, str def_name,
                        str ref, object iteration, str loop_scope, TaskRec prev,
                        object delay_s)


@cython.locals(kind=int)
cpdef object arm_timer(Run run, TaskRec t, Node node)


@cython.locals(enforced=bint)
cdef object worker_timer(TaskRec t, TaskCfg cfg)


cdef object _min_time(object best, object when)


@cython.locals(j=Py_ssize_t, tasks=list, wf=WorkflowRec, t=TaskRec, at=cython.longlong,
               best=cython.longlong, now=cython.longlong)
cpdef object next_wake(Run run)
