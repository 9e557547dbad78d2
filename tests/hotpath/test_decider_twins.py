"""The decider's twins: the compiled one is really loaded, and the kind codes the
compiled modules redeclare as C constants match hotpath.plan_nodes."""

from __future__ import annotations

import importlib.machinery

import pytest

import hotpath
from hotpath import decider, decider_py, plan_nodes, plan_py, rows_py


def test_facade_follows_the_switch() -> None:
    module = hotpath.load_twin("decider")
    assert decider.decide is module.decide
    if hotpath.PURE_PYTHON:
        assert module is decider_py
    else:
        assert module.__file__ is not None
        assert module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@pytest.mark.parametrize("module", [decider_py, plan_py, rows_py])
def test_kind_codes_match_plan_nodes(module: object) -> None:
    names = [n for n in dir(module) if n.startswith("K_")]
    assert names
    for name in names:
        assert getattr(module, name) == getattr(plan_nodes, name), name


def test_every_task_type_has_a_kind() -> None:
    from core.enums import SYSTEM_TASK_TYPES

    handled_elsewhere = {"FORK"}  # the row a FORK_JOIN creates, never a definition type
    assert SYSTEM_TASK_TYPES - set(plan_nodes.KIND_BY_TYPE) == handled_elsewhere
