"""Every `${...}` expression in Conductor's own sample definitions compiles in Podium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import TwinLoader


def _expressions(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if "${" in value else []
    if isinstance(value, dict):
        return [e for item in value.values() for e in _expressions(item)]
    if isinstance(value, list):
        return [e for item in value for e in _expressions(item)]
    return []


def test_sample_expressions_compile(twin: TwinLoader, shared_dir: Path) -> None:
    m = twin("mapping")
    samples = sorted((shared_dir / "conductor-samples").rglob("*.json"))
    expressions = [
        (path.name, text) for path in samples for text in _expressions(json.loads(path.read_text()))
    ]
    assert len(expressions) > 100  # the kitchensink and test-harness definitions
    roots: set[str] = set()
    for name, text in expressions:
        template = m.compile_template(text)  # a MappingError here fails the test
        assert not template.is_constant, (name, text)
        roots |= template.roots
    assert {"workflow", "get_es_1", "CPEWF_TASK_ID"} <= roots


def test_kitchensink_deep_scan(twin: TwinLoader) -> None:
    m = twin("mapping")
    ctx = {"get_es_1": {"output": {"hits": [{"_source": {"status": "COMPLETED"}}], "status": "OK"}}}
    assert m.render("${get_es_1.output..status}", ctx) == ["OK", "COMPLETED"]
