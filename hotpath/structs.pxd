# Cython declarations of the msgspec records the compiled hot-path twins read and
# write at C level (cimported by plan_c.pxd, rows_c.pxd, decider_c.pxd as TaskRec...).
# Rules: declarations only, no logic and no module of its own. A msgspec Struct stores
# its fields as object slots right after the object header, in the sorted order of the
# field names (msgspec sorts `__slots__`); each C struct below lists every field of its
# model in that order, so `t.status` on a typed TaskRec is one load instead of a generic
# getattr. Cython checks each struct's size against the type's at import (check_size
# error), tests/hotpath/test_struct_layout.py checks the field lists and the actual
# memory layout, and hotpath.struct_layout.verify() checks the layout again when the
# compiled twin is imported. Writes through these structs bypass msgspec's __setattr__,
# which only adds GC tracking: Task and Workflow always hold dicts, so they are always
# tracked already. WorkflowTask is frozen, events and DeciderEnv are inputs: never
# assign their fields. Keep in step with core/models/* and core/decisions.py: the
# test names what to change.

cdef extern from *:
    """
    typedef struct {
        PyObject_HEAD
        PyObject *callback_after_seconds;
        PyObject *callback_from_worker;
        PyObject *correlation_id;
        PyObject *domain;
        PyObject *end_time;
        PyObject *executed;
        PyObject *execution_metadata;
        PyObject *execution_name_space;
        PyObject *external_input_payload_storage_path;
        PyObject *external_output_payload_storage_path;
        PyObject *first_scheduled_time;
        PyObject *first_start_time;
        PyObject *input_data;
        PyObject *isolation_group_id;
        PyObject *iteration;
        PyObject *loop_over_task;
        PyObject *loop_scope;
        PyObject *output_data;
        PyObject *parent_task_id;
        PyObject *poll_count;
        PyObject *queue_wait_time;
        PyObject *rate_limit_frequency_in_seconds;
        PyObject *rate_limit_per_frequency;
        PyObject *reason_for_incompletion;
        PyObject *reference_task_name;
        PyObject *response_timeout_seconds;
        PyObject *retried;
        PyObject *retried_task_id;
        PyObject *retry_count;
        PyObject *scheduled_time;
        PyObject *script_pending;
        PyObject *seq;
        PyObject *start_delay_in_seconds;
        PyObject *start_time;
        PyObject *status;
        PyObject *sub_workflow_id;
        PyObject *subworkflow_changed;
        PyObject *task_def_name;
        PyObject *task_definition;
        PyObject *task_id;
        PyObject *task_type;
        PyObject *timer_at;
        PyObject *update_time;
        PyObject *wait_timeout;
        PyObject *worker_id;
        PyObject *workflow_instance_id;
        PyObject *workflow_priority;
        PyObject *workflow_task;
        PyObject *workflow_type;
    } PodiumTask;
    typedef struct {
        PyObject_HEAD
        PyObject *correlation_id;
        PyObject *create_time;
        PyObject *created_by;
        PyObject *end_time;
        PyObject *event;
        PyObject *external_input_payload_storage_path;
        PyObject *external_output_payload_storage_path;
        PyObject *failed_reference_task_names;
        PyObject *failed_task_names;
        PyObject *history;
        PyObject *idempotency_key;
        PyObject *input;
        PyObject *last_retried_time;
        PyObject *output;
        PyObject *owner_app;
        PyObject *parent_workflow_id;
        PyObject *parent_workflow_task_id;
        PyObject *priority;
        PyObject *rate_limit_key;
        PyObject *rate_limited;
        PyObject *re_run_from_workflow_id;
        PyObject *reason_for_incompletion;
        PyObject *restart_generation;
        PyObject *scan_from;
        PyObject *start_time;
        PyObject *status;
        PyObject *task_to_domain;
        PyObject *tasks;
        PyObject *update_time;
        PyObject *updated_by;
        PyObject *variables;
        PyObject *workflow_definition;
        PyObject *workflow_id;
        PyObject *workflow_name;
        PyObject *workflow_version;
    } PodiumWorkflow;
    typedef struct {
        PyObject_HEAD
        PyObject *async_complete;
        PyObject *cache_config;
        PyObject *case_expression;
        PyObject *case_value_param;
        PyObject *decision_cases;
        PyObject *default_case;
        PyObject *default_exclusive_join_task;
        PyObject *description;
        PyObject *dynamic_fork_join_tasks_param;
        PyObject *dynamic_fork_tasks_input_param_name;
        PyObject *dynamic_fork_tasks_param;
        PyObject *dynamic_task_name_param;
        PyObject *evaluator_type;
        PyObject *expression;
        PyObject *fork_tasks;
        PyObject *input_parameters;
        PyObject *items;
        PyObject *join_mode;
        PyObject *join_on;
        PyObject *join_status;
        PyObject *loop_condition;
        PyObject *loop_over;
        PyObject *metadata;
        PyObject *name;
        PyObject *on_state_change;
        PyObject *optional;
        PyObject *permissive;
        PyObject *rate_limited;
        PyObject *retry_count;
        PyObject *script_expression;
        PyObject *sink;
        PyObject *start_delay;
        PyObject *sub_workflow_param;
        PyObject *task_definition;
        PyObject *task_reference_name;
        PyObject *type;
    } PodiumWfTask;
    typedef struct {
        PyObject_HEAD
        PyObject *callback_after_seconds;
        PyObject *extend_lease;
        PyObject *output_data;
        PyObject *reason_for_incompletion;
        PyObject *status;
        PyObject *sub_workflow_id;
        PyObject *task_id;
        PyObject *worker_id;
    } PodiumUpdate;
    typedef struct {
        PyObject_HEAD
        PyObject *task_id;
        PyObject *worker_id;
    } PodiumPolled;
    typedef struct {
        PyObject_HEAD
        PyObject *active_domains;
        PyObject *task_defs;
    } PodiumEnv;
    """

    ctypedef class core.models.Task [object PodiumTask, check_size error]:
        cdef object callback_after_seconds
        cdef object callback_from_worker
        cdef object correlation_id
        cdef object domain
        cdef object end_time
        cdef object executed
        cdef object execution_metadata
        cdef object execution_name_space
        cdef object external_input_payload_storage_path
        cdef object external_output_payload_storage_path
        cdef object first_scheduled_time
        cdef object first_start_time
        cdef object input_data
        cdef object isolation_group_id
        cdef object iteration
        cdef object loop_over_task
        cdef object loop_scope
        cdef object output_data
        cdef object parent_task_id
        cdef object poll_count
        cdef object queue_wait_time
        cdef object rate_limit_frequency_in_seconds
        cdef object rate_limit_per_frequency
        cdef object reason_for_incompletion
        cdef object reference_task_name
        cdef object response_timeout_seconds
        cdef object retried
        cdef object retried_task_id
        cdef object retry_count
        cdef object scheduled_time
        cdef object script_pending
        cdef object seq
        cdef object start_delay_in_seconds
        cdef object start_time
        cdef object status
        cdef object sub_workflow_id
        cdef object subworkflow_changed
        cdef object task_def_name
        cdef object task_definition
        cdef object task_id
        cdef object task_type
        cdef object timer_at
        cdef object update_time
        cdef object wait_timeout
        cdef object worker_id
        cdef object workflow_instance_id
        cdef object workflow_priority
        cdef object workflow_task
        cdef object workflow_type

    ctypedef class core.models.Workflow [object PodiumWorkflow, check_size error]:
        cdef object correlation_id
        cdef object create_time
        cdef object created_by
        cdef object end_time
        cdef object event
        cdef object external_input_payload_storage_path
        cdef object external_output_payload_storage_path
        cdef object failed_reference_task_names
        cdef object failed_task_names
        cdef object history
        cdef object idempotency_key
        cdef object input
        cdef object last_retried_time
        cdef object output
        cdef object owner_app
        cdef object parent_workflow_id
        cdef object parent_workflow_task_id
        cdef object priority
        cdef object rate_limit_key
        cdef object rate_limited
        cdef object re_run_from_workflow_id
        cdef object reason_for_incompletion
        cdef object restart_generation
        cdef object scan_from
        cdef object start_time
        cdef object status
        cdef object task_to_domain
        cdef object tasks
        cdef object update_time
        cdef object updated_by
        cdef object variables
        cdef object workflow_definition
        cdef object workflow_id
        cdef object workflow_name
        cdef object workflow_version

    ctypedef class core.models.WorkflowTask [object PodiumWfTask, check_size error]:
        cdef object async_complete
        cdef object cache_config
        cdef object case_expression
        cdef object case_value_param
        cdef object decision_cases
        cdef object default_case
        cdef object default_exclusive_join_task
        cdef object description
        cdef object dynamic_fork_join_tasks_param
        cdef object dynamic_fork_tasks_input_param_name
        cdef object dynamic_fork_tasks_param
        cdef object dynamic_task_name_param
        cdef object evaluator_type
        cdef object expression
        cdef object fork_tasks
        cdef object input_parameters
        cdef object items
        cdef object join_mode
        cdef object join_on
        cdef object join_status
        cdef object loop_condition
        cdef object loop_over
        cdef object metadata
        cdef object name
        cdef object on_state_change
        cdef object optional
        cdef object permissive
        cdef object rate_limited
        cdef object retry_count
        cdef object script_expression
        cdef object sink
        cdef object start_delay
        cdef object sub_workflow_param
        cdef object task_definition
        cdef object task_reference_name
        cdef object type

    ctypedef class core.decisions.TaskUpdate [object PodiumUpdate, check_size error]:
        cdef object callback_after_seconds
        cdef object extend_lease
        cdef object output_data
        cdef object reason_for_incompletion
        cdef object status
        cdef object sub_workflow_id
        cdef object task_id
        cdef object worker_id

    ctypedef class core.decisions.TaskPolled [object PodiumPolled, check_size error]:
        cdef object task_id
        cdef object worker_id

    ctypedef class core.decisions.DeciderEnv [object PodiumEnv, check_size error]:
        cdef object active_domains
        cdef object task_defs
