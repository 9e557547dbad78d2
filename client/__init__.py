"""Podium's trio-native worker SDK and API client.

Rules: `client` talks to a server only over HTTP (it never imports `server`); it uses
`core` models for every body. Public names are re-exported here. `ConductorApiError`
means the server answered no; `TransportError` means no answer came.

A worker process in a few lines::

    from client import NonRetryableError, TaskRunner, worker

    @worker("charge_card")
    def charge(amount: int, card: str) -> dict:
        if amount <= 0:
            raise NonRetryableError(f"amount must be positive, got {amount}")
        return {"charged": amount}

    TaskRunner([charge], "http://127.0.0.1:8080", concurrency=8).run_sync()
"""

from client.api import ConductorApiError, ConductorClient, api_base_url
from client.http import HttpPool, TransportError, TransportTimeout
from client.runner import Backoff, RunnerStats, TaskRunner
from client.worker import (
    AsyncFunctionWorker,
    FunctionWorker,
    InProgress,
    NonRetryableError,
    SyncFunctionWorker,
    Worker,
    result_from_error,
    result_from_value,
    worker,
)

__all__ = [
    "AsyncFunctionWorker",
    "Backoff",
    "ConductorApiError",
    "ConductorClient",
    "FunctionWorker",
    "HttpPool",
    "InProgress",
    "NonRetryableError",
    "RunnerStats",
    "SyncFunctionWorker",
    "TaskRunner",
    "TransportError",
    "TransportTimeout",
    "Worker",
    "api_base_url",
    "result_from_error",
    "result_from_value",
    "worker",
]
