"""Build the compiled hot path.

Rules: metadata lives in pyproject.toml; this file only lists the Cython extensions.
Each `*_py.py` module in hotpath/ is compiled a second time under the name `*_c`,
augmented by `hotpath/*_c.pxd`: one source of truth, two importable twins.
PODIUM_PURE_PYTHON=1 at build time skips the extensions (strictly "0" or "1").
PODIUM_HOTPATH_DEBUG=1 builds with line tracing and writes the annotate HTML.
"""

import os

from setuptools import Extension, setup


def _flag(name: str) -> bool:
    value = os.environ.get(name, "0")
    if value not in ("0", "1"):
        raise SystemExit(f"{name} must be '0' or '1', got {value!r}")
    return value == "1"


# (module name of the compiled twin, the single pure-Python source it is built from)
TWINS = [
    ("hotpath.mapping_c", "hotpath/mapping_py.py"),
    ("hotpath.plan_c", "hotpath/plan_py.py"),
    ("hotpath.rows_c", "hotpath/rows_py.py"),
    ("hotpath.decider_c", "hotpath/decider_py.py"),
]


def _drop_stale_c_files() -> None:
    # cythonize does not follow the cimports of an augmenting .pxd (decider_c.pxd cimports
    # plan_c and rows_c), so a changed .pxd regenerates every twin's C file.
    pxds = [os.path.join("hotpath", f) for f in os.listdir("hotpath") if f.endswith(".pxd")]
    newest = max((os.path.getmtime(p) for p in pxds), default=0.0)
    for _, source in TWINS:
        c_file = source[:-3] + ".c"
        if os.path.exists(c_file) and os.path.getmtime(c_file) < newest:
            os.remove(c_file)


def extensions() -> list[Extension]:
    if _flag("PODIUM_PURE_PYTHON"):
        return []
    from Cython.Build import cythonize

    _drop_stale_c_files()

    debug = _flag("PODIUM_HOTPATH_DEBUG")
    exts = [
        Extension(
            name,
            [source],
            define_macros=[("CYTHON_TRACE", "1")] if debug else [],
        )
        for name, source in TWINS
        if os.path.exists(source)
    ]
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
            "linetrace": debug,
        },
        annotate=debug,
    )


setup(ext_modules=extensions())
