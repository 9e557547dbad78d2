"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis):
generated requests, valid and invalid, must never get a 5xx.

Bounded for the suite's time budget: 8 examples per operation (a run with 30 found no
5xx either). Long-poll and start-and-wait operations are left out because their
generated timeouts would make the run wait for seconds per example (their limits are
tested in test_api_errors.py).
Operations are driven with hypothesis directly (schemathesis' lazy pytest fixture
loader does not work with this pytest version).
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.integration.conftest import PodiumServer

MAX_EXAMPLES = 8
SKIPPED = re.compile(r"/poll/|/execute/")


def test_no_server_errors(podium_server: PodiumServer) -> None:
    # The base URL comes from the document's location (paths carry the /api prefix).
    schema = schemathesis.openapi.from_url(f"{podium_server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 60  # the whole API is described, not a fragment
    fuzzed = 0
    for operation in operations:
        if SKIPPED.search(operation.path):
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def no_5xx(case: Any) -> None:
            case.call_and_validate(checks=[not_a_server_error], timeout=10)

        no_5xx()
        fuzzed += 1
    assert fuzzed > 50
