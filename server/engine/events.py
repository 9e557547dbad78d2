"""Event handlers (spec 1.4, 2.8): messages published to Podium's internal event queue
drive workflows.

Rules:
- A message goes to every *active* handler whose `event` equals the queue name
  ("conductor:<workflow>:<ref>" from EVENT tasks, or any name given to publish_event).
- A handler's `condition` is JavaScript with `$` = the payload, evaluated through
  server.scripting; truthy per spec 6.5 (booleans as is, numbers > 0, anything else
  false). An absent condition is true; an erroring one skips the handler (logged).
- Action templates are rendered with the hot path's `${...}` mapping engine against the
  payload. Supported actions: start_workflow, complete_task, fail_task (as in Conductor
  OSS) and terminate_workflow (an extension; Conductor OSS rejects it).
- Delivery is in process and at most once: `publish` runs the handlers before it returns
  (an EVENT task's publish happens after its workflow's commit). One failing action does
  not stop the others; failures are logged and counted, never raised to the publisher.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from core.decisions import EvaluateScript
from core.enums import TaskResultStatus
from core.errors import PodiumError
from core.models import UNSET, EventAction, EventHandler, StartWorkflowRequest, TaskResult
from hotpath.mapping import compile_template
from server.engine.views import pending_task_by_ref
from server.scripting import js_truthy

if TYPE_CHECKING:
    from server.engine.engine import Engine

log = logging.getLogger("podium.events")


def render(template: Any, payload: Any) -> Any:
    """Resolve `${...}` expressions in `template` against the message payload."""
    return compile_template(template).render(payload)


def _expand_inline_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _expand_inline_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_inline_json(v) for v in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return _expand_inline_json(msgspec.json.decode(value))
        except msgspec.DecodeError:
            return value
    return value


class EventBus:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.delivered = 0  # actions run (tests and metrics)
        self.failed = 0

    async def publish(
        self, queue: str, payload: dict[str, Any], *, message_id: str | None = None
    ) -> int:
        """Run the matching handlers' actions for one message; returns actions run."""
        handlers = [
            h for h in await self._engine.metadata.event_handlers() if h.active and h.event == queue
        ]
        message_id = message_id or str(uuid.uuid4())
        ran = 0
        for handler in handlers:
            if not await self._condition_holds(handler, payload):
                continue
            for action in handler.actions:
                try:
                    await self._run_action(handler, action, payload, message_id)
                    ran += 1
                except PodiumError as exc:
                    self.failed += 1
                    log.warning(
                        "event handler %s, action %s on %s failed: %s",
                        handler.name,
                        action.action,
                        queue,
                        exc,
                    )
                except Exception:
                    self.failed += 1
                    log.exception(
                        "event handler %s, action %s on %s failed",
                        handler.name,
                        action.action,
                        queue,
                    )
        self.delivered += ran
        return ran

    async def _condition_holds(self, handler: EventHandler, payload: dict[str, Any]) -> bool:
        condition = handler.condition
        if not isinstance(condition, str) or not condition.strip():
            return True
        result = await self._engine.executor.script(
            EvaluateScript(
                task_id=f"event-handler:{handler.name}",
                language="javascript",
                script=condition,
                bindings=payload,
            )
        )
        if result.error is not None:
            log.warning("event handler %s: condition failed: %s", handler.name, result.error)
            return False
        return js_truthy(result.value)

    async def _run_action(
        self, handler: EventHandler, action: EventAction, payload: dict[str, Any], message_id: str
    ) -> None:
        data = _expand_inline_json(payload) if action.expand_inline_json else payload
        engine = self._engine
        kind = action.action
        if kind == "start_workflow" and action.start_workflow:
            spec = render(msgspec.to_builtins(action.start_workflow), data)
            wf_input = dict(spec.get("input") or {})
            wf_input["conductor.event.messageId"] = message_id
            wf_input["conductor.event.name"] = handler.event
            task_to_domain = spec.get("taskToDomain") or data.get("taskToDomain") or {}
            request = StartWorkflowRequest(
                name=spec.get("name") or "",
                version=spec.get("version"),
                correlation_id=spec.get("correlationId"),
                input=wf_input,
                task_to_domain=task_to_domain if isinstance(task_to_domain, dict) else {},
            )
            await engine.start_workflow(request)
        elif kind in ("complete_task", "fail_task"):
            details = action.complete_task if kind == "complete_task" else action.fail_task
            if not details:
                raise PodiumError(f"{kind}: the action has no {kind} details")
            spec = render(msgspec.to_builtins(details), data)
            status = (
                TaskResultStatus.COMPLETED if kind == "complete_task" else TaskResultStatus.FAILED
            )
            await self._update_task(spec, status)
        elif kind == "terminate_workflow" and action.terminate_workflow:
            spec = render(msgspec.to_builtins(action.terminate_workflow), data)
            workflow_id = spec.get("workflowId")
            if not workflow_id:
                raise PodiumError("terminate_workflow.workflowId: resolved to nothing")
            await engine.terminate(workflow_id, spec.get("terminationReason"))
        else:
            raise PodiumError(f"Action not supported: {kind}")

    async def _update_task(self, spec: dict[str, Any], status: TaskResultStatus) -> None:
        engine = self._engine
        task_id = spec.get("taskId")
        workflow_id = spec.get("workflowId")
        if task_id:
            workflow_id = await engine.store.workflow_id_for_task(task_id)
        elif workflow_id and spec.get("taskRefName"):
            workflow = await engine.get_workflow(workflow_id)
            task = pending_task_by_ref(workflow, spec["taskRefName"])
            task_id = task.task_id if task is not None else None
        if not task_id or not workflow_id:
            raise PodiumError(f"no pending task matches {spec!r}")
        reason = spec.get("reasonForIncompletion")
        await engine.update_task(
            TaskResult(
                workflow_instance_id=workflow_id,
                task_id=task_id,
                status=status,
                output_data=dict(spec.get("output") or {}),
                reason_for_incompletion=reason if isinstance(reason, str) else UNSET,
            )
        )
