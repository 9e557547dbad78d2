"""Public facade of the `${...}` mapping engine: the compiled or pure-Python twin.

Rules: callers import from here (`from hotpath.mapping import compile_template`), never
from a twin; PODIUM_PURE_PYTHON picks the twin once, at import (see hotpath/__init__.py).
Type checkers see the pure-Python signatures, which the compiled twin shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotpath import load_twin

if TYPE_CHECKING:
    from hotpath.mapping_py import Template, compile_template, java_string, render
else:
    _impl = load_twin("mapping")
    Template = _impl.Template
    compile_template = _impl.compile_template
    java_string = _impl.java_string
    render = _impl.render

__all__ = ["Template", "compile_template", "java_string", "render"]
