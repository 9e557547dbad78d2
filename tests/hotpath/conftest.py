"""Fixtures for decider tests: the decider twin under test."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest


@pytest.fixture
def decider(twin: Any) -> ModuleType:
    """hotpath.decider_c or hotpath.decider_py, per the `hotpath_impl` parameter."""
    return twin("decider")  # type: ignore[no-any-return]
