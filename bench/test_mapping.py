"""Mapping benchmark: a 5-key template with nested paths, compiled vs pure Python."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from bench import kernels


def test_render_template(benchmark: Any, mapping_twin: ModuleType) -> None:
    """1,000 renders of the template against a JSON-decoded context."""
    benchmark.group = "mapping: 1000 renders"
    assert benchmark(kernels.mapping(1000), mapping_twin) == 1000


def test_compile_template(benchmark: Any, mapping_twin: ModuleType) -> None:
    """Compiling the template (done once per definition and cached by the engine)."""
    benchmark.group = "mapping: compile"
    template = benchmark(mapping_twin.compile_template, kernels.MAPPING_TEMPLATE)
    assert template.render(kernels.mapping_context())["customer"] == "Ada"
