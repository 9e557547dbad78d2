"""The PODIUM_PURE_PYTHON switch: strict values, the compiled twin really loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import hotpath


def _implementation(flag: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_PURE_PYTHON": flag}
    return subprocess.run(
        [sys.executable, "-c", "import hotpath; print(hotpath.IMPLEMENTATION)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(("flag", "expected"), [("0", "cython"), ("1", "python")])
def test_flag_selects_implementation(flag: str, expected: str) -> None:
    result = _implementation(flag)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("flag", ["true", "yes", "", "2", " 1"])
def test_flag_rejects_anything_but_0_or_1(flag: str) -> None:
    result = _implementation(flag)
    assert result.returncode != 0
    assert "PODIUM_PURE_PYTHON must be '0'" in result.stderr


def test_compiled_twin_loaded_unless_pure_requested() -> None:
    # Catches a silent fallback: with the flag at "0" the extension must be importable.
    if hotpath.PURE_PYTHON:
        assert hotpath.IMPLEMENTATION == "python"
        return
    assert hotpath.IMPLEMENTATION == "cython"
    module = hotpath.load_twin("mapping")
    assert module.__file__ is not None
    assert module.__file__.endswith(".so")
