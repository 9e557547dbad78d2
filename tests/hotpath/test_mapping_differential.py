"""Differential test: the compiled and pure-Python mapping twins never disagree.

Generated templates (expressions, nested expressions, escapes, JSONPath features and raw
fuzz text) and generated contexts must give the same compile error text, or the same
rendered value (compared by `repr`, so 1, 1.0 and True stay distinct), roots and flags.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hotpath
from core.errors import MappingError

pytestmark = pytest.mark.compiled

KEYS = ["a", "b", "x", "items", "a b", "0", "null", "k'q", "1"]
ROOTS = ["workflow", "t1", "t-2", "CPEWF_TASK_ID", "HOME"]

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet="ab ${}.[]'", max_size=6)
    | st.sampled_from(KEYS)
)
json_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=20,
)
# Roots that usually exist, holding dicts keyed like the paths below, so most expressions
# reach real values instead of null.
objects = st.dictionaries(st.sampled_from(KEYS), json_values, min_size=2, max_size=6)
contexts = st.fixed_dictionaries(
    {"workflow": objects, "t1": objects | json_values},
    optional={"t-2": objects, "CPEWF_TASK_ID": st.text(max_size=5), "HOME": json_values},
)

path_roots = st.sampled_from(
    ["workflow", "t1", "t-2", "missing", "$.workflow", "['t1']", "$['t-2']", "HOME", "$"]
)
path_steps = st.sampled_from(
    [".a", ".b", ".x", ".items", ".null", ".0", "[0]", "[1]", "[-1]", "[9]", "['a b']",
     "[\"x\"]", "['k\\'q']", "..a", "[*]", ".*", "[0:2]", "[0,1]", ".length()", ".sum()",
     ".first()", "[?(@.a == 1)]", "[?(@ == 'a')]"]
)  # fmt: skip


def _path(root: str, steps: list[str]) -> str:
    return root + "".join(steps)


paths = st.builds(_path, path_roots, st.lists(path_steps, max_size=4))


@st.composite
def expressions(draw: st.DrawFn) -> str:
    path = draw(paths)
    kind = draw(st.sampled_from(["plain", "spaced", "nested", "nested-root", "escaped", "empty"]))
    if kind == "spaced":
        return "${ " + path + " }"
    if kind == "nested":
        return "${" + path + ".${" + draw(paths) + "}}"
    if kind == "nested-root":
        return "${${" + draw(paths) + "}.a}"
    if kind == "escaped":
        return "$${" + path + "}"
    if kind == "empty":
        return "${}"
    return "${" + path + "}"


literals = st.sampled_from(["", "x", " ", "$", "}", "{", "$$", "a.b", "-", "null"])
template_strings = st.lists(
    st.one_of(expressions(), expressions(), literals), min_size=1, max_size=4
).map("".join)
fuzz_strings = st.text(alphabet="${}[]'\".a0-*?@() ", max_size=14)
template_leaves = st.one_of(
    template_strings,
    template_strings,
    template_strings,
    fuzz_strings,
    st.none() | st.booleans() | st.integers() | st.floats(),
)
templates = st.recursive(
    template_leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from([*KEYS, "${a}"]), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def real_path_cases(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A context and a template whose paths walk values that exist in it."""
    ctx = draw(contexts)
    pieces: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        root = draw(st.sampled_from(sorted(ctx)))
        path = draw(st.sampled_from([root, "$." + root, "['" + root + "']"]))
        value = ctx[root]
        for _ in range(draw(st.integers(0, 4))):
            if isinstance(value, dict) and value:
                key = draw(st.sampled_from(sorted(value)))
                quoted = "'" + key.replace("'", "\\'") + "'"
                plain_ok = key.replace(" ", "").replace("'", "") == key
                path += draw(
                    st.sampled_from(["." + key if plain_ok else f"[{quoted}]", f"[{quoted}]"])
                )
                value = value[key]
            elif isinstance(value, list) and value:
                index = draw(st.integers(-len(value), len(value) - 1))
                path += f"[{index}]"
                value = value[index]
            else:
                break
        pieces.append(draw(st.sampled_from(["", "x=", " "])) + "${" + path + "}")
    return "".join(pieces), ctx


def _outcome(module: ModuleType, template: Any, ctx: dict[str, Any]) -> tuple[Any, ...]:
    try:
        compiled = module.compile_template(template)
    except MappingError as exc:
        return ("error", str(exc))
    first = repr(compiled.render(ctx))
    second = repr(compiled.render(ctx))  # a second render (warm caches) must agree too
    assert first == second
    return ("ok", first, sorted(compiled.roots), compiled.dynamic_roots, compiled.is_constant)


@pytest.fixture(scope="module")
def both_twins(request: pytest.FixtureRequest) -> tuple[ModuleType, ModuleType]:
    if hotpath.PURE_PYTHON or request.config.getoption("--no-extensions"):
        pytest.skip("the compiled twin is excluded from this run (pure Python requested)")
    return hotpath.load_twin("mapping", compiled=True), hotpath.load_twin("mapping", compiled=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=templates, ctx=contexts)
def test_twins_agree(
    both_twins: tuple[ModuleType, ModuleType], template: Any, ctx: dict[str, Any]
) -> None:
    compiled, pure = both_twins
    assert _outcome(compiled, template, ctx) == _outcome(pure, template, ctx)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=template_strings | fuzz_strings, ctx=contexts)
def test_twins_agree_on_strings(
    both_twins: tuple[ModuleType, ModuleType], template: str, ctx: dict[str, Any]
) -> None:
    compiled, pure = both_twins
    assert _outcome(compiled, template, ctx) == _outcome(pure, template, ctx)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=real_path_cases())
def test_twins_agree_on_existing_paths(
    both_twins: tuple[ModuleType, ModuleType], case: tuple[str, dict[str, Any]]
) -> None:
    template, ctx = case
    compiled, pure = both_twins
    outcome = _outcome(compiled, template, ctx)
    assert outcome[0] == "ok"
    assert outcome == _outcome(pure, template, ctx)


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_java_string_twins_agree(both_twins: tuple[ModuleType, ModuleType], value: Any) -> None:
    compiled, pure = both_twins
    assert compiled.java_string(value) == pure.java_string(value)
