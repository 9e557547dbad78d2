"""The hot path: the decider and the `${...}` mapping engine, compiled or pure Python.

Rules: nothing under hotpath/ awaits, reads a clock, draws randomness or touches IO;
time and seeds arrive as arguments. Each `*_py.py` module is the single source; the build
compiles it again as `*_c` (typed by `*_c.pxd`). PODIUM_PURE_PYTHON selects the twin:
"0" (default) = compiled, "1" = pure Python, anything else is an error. A missing build
is a loud ImportError naming the fix, never a silent fallback.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
from types import ModuleType


def _pure_python_requested() -> bool:
    value = os.environ.get("PODIUM_PURE_PYTHON", "0")
    if value not in ("0", "1"):
        raise ValueError(
            "PODIUM_PURE_PYTHON must be '0' (compiled hot path) or '1' (pure Python), "
            f"got {value!r}"
        )
    return value == "1"


PURE_PYTHON = _pure_python_requested()
IMPLEMENTATION = "python" if PURE_PYTHON else "cython"


def load_twin(stem: str, *, compiled: bool | None = None) -> ModuleType:
    """Import `hotpath.<stem>_py` or its compiled twin `hotpath.<stem>_c`.

    Args:
        stem: the module's base name, e.g. "decider".
        compiled: force a twin (tests compare both); None follows PODIUM_PURE_PYTHON.

    Raises:
        ImportError: the compiled twin was requested but is not built.
    """
    use_compiled = (not PURE_PYTHON) if compiled is None else compiled
    if not use_compiled:
        return importlib.import_module(f"hotpath.{stem}_py")
    try:
        module = importlib.import_module(f"hotpath.{stem}_c")
    except ImportError as exc:
        raise ImportError(
            f"the compiled hot path (hotpath.{stem}_c) is not built: run `make build` "
            "(or `pip install -e .`), or set PODIUM_PURE_PYTHON=1 to use pure Python"
        ) from exc
    origin = getattr(module, "__file__", "") or ""
    if not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        raise ImportError(f"hotpath.{stem}_c resolved to {origin!r}, not a compiled extension")
    return module
