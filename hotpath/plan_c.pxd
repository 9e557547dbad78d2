# Cython declarations augmenting hotpath/plan_py.py, compiled as hotpath.plan_c.
# Rules: types only, no logic; every name here exists in plan_py.py with the same
# signature. Node, TaskCfg and Plan become extension types with typed attributes, which
# hotpath/decider_c.pxd cimports, so the compiled decider reads them at C level.

cimport cython

from hotpath.mapping_c cimport Template
from hotpath.structs cimport (
    Task as TaskRec,
    Workflow as WorkflowRec,
    WorkflowTask as WorkflowTaskRec,
)


@cython.final
cdef class TaskCfg:
    cdef public long long retry_count
    cdef public int retry_logic
    cdef public long long retry_delay_s
    cdef public long long backoff_scale
    cdef public long long max_retry_delay_s
    cdef public long long jitter_ms
    cdef public long long defn_timeout_s
    cdef public long long timeout_s
    cdef public object timeout_policy
    cdef public long long response_timeout_s
    cdef public long long poll_timeout_s
    cdef public long long total_timeout_s
    cdef public long long rate_limit
    cdef public long long rate_freq
    cdef public object isolation_group
    cdef public object namespace
    cdef public dict defaults
    cdef public Template template

    cpdef object poll_deadline(self, TaskRec t)


@cython.final
cdef class Node:
    cdef public WorkflowTaskRec wt
    cdef public str ref
    cdef public str name
    cdef public str type
    cdef public int kind
    cdef public Node parent
    cdef public Node loop
    cdef public Node next
    cdef public Template template
    cdef public bint optional
    cdef public bint permissive
    cdef public long long start_delay
    cdef public long long retry_override
    cdef public bint never_retried
    cdef public list branches
    cdef public dict cases
    cdef public Node default
    cdef public Node body
    cdef public TaskCfg cfg
    cdef public object cfg_src
    cdef public object proto
    cdef public TaskCfg proto_cfg
    cdef public bint generated


@cython.final
cdef class Plan:
    cdef public object defn
    cdef public long long defn_timeout_s
    cdef public long long timeout_s
    cdef public dict nodes
    cdef public Node first
    cdef public Template output_template
    cdef public dict dynamic_cfgs

    cpdef Node compile_list(self, list tasks, Node parent, Node loop)
    cpdef object workflow_deadline(self, WorkflowRec wf)
    cpdef Node node_for(self, object wt, Node parent)


cdef int K_WORKER, K_SWITCH, K_FORK, K_DO_WHILE, K_DYNAMIC
cdef long long INT32_MAX


cdef list _LAST


@cython.locals(last=list)
cpdef Plan plan_for(object defn)


cpdef Plan _plan_for(object defn)


@cython.locals(wt=WorkflowTaskRec, defs=dict)
cpdef TaskCfg node_cfg(Node node, object task_defs)


cpdef TaskCfg row_cfg(Plan plan, TaskRec t, Node node, object task_defs)


cpdef TaskCfg dynamic_cfg(Plan plan, Node node, str name, object task_defs)


cdef object _opt(object value)


cpdef dict workflow_ctx(WorkflowRec wf)


cpdef dict task_ctx(TaskRec t)


@cython.locals(tasks=list, t=TaskRec, i=Py_ssize_t, io=int, kind=int, root=str, ref=str,
               wt=WorkflowTaskRec)
cpdef dict build_ctx(WorkflowRec wf, Template template, str task_id)


cdef dict _io_entry(int io, object input_data, object output_data)


@cython.locals(t=TaskRec)
cpdef dict full_ctx(WorkflowRec wf, str task_id)


cpdef str queue_name(str task_type, str domain, str namespace, str group)


cpdef str task_queue(TaskRec t)


cpdef object resolve_domain(object ttd, object active_domains, str task_name)


cpdef long long retry_delay_s(TaskCfg cfg, TaskRec t) except? -1
