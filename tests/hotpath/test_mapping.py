"""The `${...}` mapping engine, rule by rule (spec 6.2), on both twins.

Each table row is one rule with its exact expected output; docs/compatibility.md explains
where Podium's choice differs from Conductor's.
"""

from __future__ import annotations

import collections
import copy
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import MappingError
from tests.conftest import TwinLoader

CTX: dict[str, Any] = {
    "workflow": {
        "input": {
            "x": 1,
            "s": "str",
            "key": "x",
            "list": [10, 20, 30],
            "obj": {"a": 1, "b": [1, 2]},
            "flag": True,
            "none": None,
            "f": 1.5,
            "big": 1e7,
            "weird key": "W",
            "quote'key": "Q",
            "ref": "t1",
            "bad": "a b",
        },
        "variables": {"v": "V"},
        "workflowId": "wf-1",
        "status": "RUNNING",
    },
    "t1": {
        "output": {
            "items": [
                {"name": "a", "status": "OK", "n": 1},
                {"name": "b", "status": "FAILED", "n": 2},
                {"name": "c", "status": "OK", "n": 4},
            ],
            "count": 3,
        },
        "status": "COMPLETED",
    },
    "task-2": {"output": {"result": "dash"}},
    "get_es_1": {"output": {"hits": [{"status": "A"}, {"status": "B"}], "meta": {"status": "C"}}},
    "CPEWF_TASK_ID": "task-id-1",
}

RULES: list[tuple[str, Any, Any]] = [
    # A whole-string expression renders to the raw typed value.
    ("whole int", "${workflow.input.x}", 1),
    ("whole str", "${workflow.input.s}", "str"),
    ("whole dict", "${workflow.input.obj}", {"a": 1, "b": [1, 2]}),
    ("whole list", "${workflow.input.list}", [10, 20, 30]),
    ("whole bool", "${workflow.input.flag}", True),
    ("whole explicit null", "${workflow.input.none}", None),
    ("whole float", "${workflow.input.f}", 1.5),
    ("surrounding spaces inside braces", "${ workflow.input.x }", 1),
    ("task status", "${t1.status}", "COMPLETED"),
    ("CPEWF_TASK_ID root", "${CPEWF_TASK_ID}", "task-id-1"),
    # Missing paths are null, never an error.
    ("missing key", "${workflow.input.missing}", None),
    ("step into a number", "${workflow.input.x.deeper}", None),
    ("step into a string", "${workflow.input.s.length}", None),
    ("unknown root", "${nope.output.x}", None),
    ("index on a dict", "${workflow.input.obj[0]}", None),
    ("key on a list", "${workflow.input.list.a}", None),
    # Embedded expressions concatenate Java toString values.
    ("embedded int", "x=${workflow.input.x}", "x=1"),
    ("embedded bool", "${workflow.input.flag}!", "true!"),
    ("embedded null", "${workflow.input.none}-", "null-"),
    ("embedded missing", "[${workflow.input.missing}]", "[null]"),
    ("embedded float", "v${workflow.input.f}", "v1.5"),
    ("embedded large float", "${workflow.input.big} ", "1.0E7 "),
    ("embedded dict", "${workflow.input.obj} ", "{a=1, b=[1, 2]} "),
    ("embedded list", "${workflow.input.list}!", "[10, 20, 30]!"),
    ("two expressions", "${workflow.input.x}${workflow.input.s}", "1str"),
    # Empty expressions.
    ("empty whole", "${}", ""),
    ("blank whole", "${  }", ""),
    ("empty embedded", "a${}b", "ab"),
    # Escapes and stray characters.
    ("escape", "$${workflow.input.x}", "${workflow.input.x}"),
    ("escape then expression", "$${x} ${workflow.input.x}", "${x} 1"),
    ("escape keeps nested braces", "$${a.${b}}", "${a.${b}}"),
    ("unterminated escape is literal", "$${unterminated", "${unterminated"),
    ("lone dollar", "cost: $5", "cost: $5"),
    ("double dollar", "$$", "$$"),
    ("stray closing brace", "a}b", "a}b"),
    ("plain braces", "{x}", "{x}"),
    ("triple dollar", "$$${workflow.input.x}", "$${workflow.input.x}"),
    # Nested expressions: the inner one is resolved first, as a string.
    ("nested whole", "${workflow.input.${workflow.input.key}}", 1),
    ("nested embedded", "v=${workflow.input.${workflow.input.key}}", "v=1"),
    ("nested missing inner is 'null'", "${workflow.input.${workflow.input.missing}}", None),
    ("nested root", "${${workflow.input.ref}.output.count}", 3),
    ("nested malformed result is null", "${workflow.input.${workflow.input.bad}}", None),
    # Paths: dots, brackets, quotes, indexes, `$.`.
    ("index", "${t1.output.items[0].name}", "a"),
    ("negative index", "${t1.output.items[-1].name}", "c"),
    ("index past the end", "${t1.output.items[3]}", None),
    ("negative index before the start", "${t1.output.items[-4]}", None),
    ("huge index", "${t1.output.items[99999999999999999999999]}", None),
    ("bracket keys", "${t1.output['items'][1][\"name\"]}", "b"),
    ("bracket spaces", "${t1.output[ 'items' ][ 1 ].name}", "b"),
    ("dollar dot prefix", "${$.workflow.input.x}", 1),
    ("dollar bracket prefix", "${$['workflow']['input']['x']}", 1),
    ("dot then bracket", "${workflow.['input'].x}", 1),
    ("bracket root", "${['task-2'].output.result}", "dash"),
    ("key with a space", "${workflow.input['weird key']}", "W"),
    ("escaped quote in key", "${workflow.input['quote\\'key']}", "Q"),
    ("dash in root name", "${task-2.output.result}", "dash"),
    # Full JSONPath through the library: indefinite paths give lists.
    ("deep scan", "${get_es_1.output..status}", ["A", "B", "C"]),
    ("wildcard", "${t1.output.items[*].name}", ["a", "b", "c"]),
    ("dot wildcard", "${workflow.variables.*}", ["V"]),
    ("filter", "${t1.output.items[?(@.status == 'OK')].name}", ["a", "c"]),
    ("slice", "${t1.output.items[0:2].name}", ["a", "b"]),
    ("union", "${t1.output.items[0,2].name}", ["a", "c"]),
    ("empty indefinite", "${t1.output.nothing[*]}", []),
    ("deep scan with a dashed root", "${task-2..result}", ["dash"]),
    ("length()", "${t1.output.items.length()}", 3),
    ("size() of indefinite", "${t1.output.items[*].name.size()}", 3),
    ("sum()", "${t1.output.items[*].n.sum()}", 7.0),
    ("max()", "${t1.output.items[*].n.max()}", 4.0),
    ("avg()", "${t1.output.items[*].n.avg()}", 7.0 / 3),
    ("first()", "${t1.output.items[*].name.first()}", "a"),
    ("keys()", "${workflow.variables.keys()}", ["v"]),
    ("function on missing is null", "${t1.output.missing.length()}", None),
    ("unknown function is null", "${t1.output.items.nope()}", None),
    ("function with arguments is null", "${t1.output.items.concat('x')}", None),
    ("function on the document root", "${$.currentTimeMillis()}", None),
    ("library path embedded", "s=${t1.output.items[*].name}", "s=[a, b, c]"),
    # Non-string scalars pass through.
    ("int passes through", 5, 5),
    ("float passes through", 2.5, 2.5),
    ("bool passes through", False, False),
    ("null passes through", None, None),
    ("plain string", "no expressions", "no expressions"),
]


@pytest.mark.parametrize(
    ("template", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_rule(twin: TwinLoader, template: Any, expected: Any) -> None:
    m = twin("mapping")
    result = m.compile_template(template).render(CTX)
    assert result == expected
    assert type(result) is type(expected)


def test_recursion_into_dicts_and_lists(twin: TwinLoader) -> None:
    m = twin("mapping")
    template = {
        "a": ["${workflow.input.x}", 2, {"b": "${workflow.input.s}", "c": [None, True]}],
        "n": 5,
        "z": None,
        "t": True,
        "f": 1.5,
        "s": "plain",
        "${workflow.input.x}": "keys are never evaluated",
        "tuple": ("${workflow.input.flag}", 1),
    }
    assert m.compile_template(template).render(CTX) == {
        "a": [1, 2, {"b": "str", "c": [None, True]}],
        "n": 5,
        "z": None,
        "t": True,
        "f": 1.5,
        "s": "plain",
        "${workflow.input.x}": "keys are never evaluated",
        "tuple": [True, 1],
    }


def test_key_order_is_the_template_order(twin: TwinLoader) -> None:
    m = twin("mapping")
    template = {"z": 1, "a": "${workflow.input.x}", "m": 2, "b": "${workflow.input.s}"}
    assert list(m.compile_template(template).render(CTX)) == ["z", "a", "m", "b"]


def test_render_builds_new_containers_each_time(twin: TwinLoader) -> None:
    m = twin("mapping")
    template = {"const": {"a": [1, 2]}, "mixed": [1, "${workflow.input.x}"], "l": [[]]}
    pristine = copy.deepcopy(template)
    compiled = m.compile_template(template)
    first = compiled.render(CTX)
    first["const"]["a"].append(3)
    first["mixed"][0] = "changed"
    first["l"][0].append("x")
    first["new"] = 1
    second = compiled.render(CTX)
    assert second == {"const": {"a": [1, 2]}, "mixed": [1, 1], "l": [[]]}
    assert template == pristine
    assert second["const"] is not template["const"]


def test_constant_template_renders_fresh_equal_value(twin: TwinLoader) -> None:
    m = twin("mapping")
    template = {"a": [1, {"b": "text"}], "c": "$ and } but no expression"}
    compiled = m.compile_template(template)
    assert compiled.is_constant
    assert compiled.roots == frozenset()
    result = compiled.render({})
    assert result == template
    assert result is not template


@pytest.mark.parametrize("template", ["$${x}", ["a", ("b",)], {"k": "${}"}, "${nothing}", "${ }"])
def test_not_constant_when_render_differs_from_input(twin: TwinLoader, template: Any) -> None:
    assert not twin("mapping").compile_template(template).is_constant


JSON_TEMPLATES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(alphabet="ab${}.[] ", max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet="ab$", max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(template=JSON_TEMPLATES)
def test_constant_templates_render_to_their_input(twin: TwinLoader, template: Any) -> None:
    try:
        compiled = twin("mapping").compile_template(template)
    except MappingError:
        return  # malformed templates are covered in test_mapping_errors.py
    if compiled.is_constant:
        assert compiled.render({}) == template


def test_values_from_the_context_are_shared_not_copied(twin: TwinLoader) -> None:
    # Documented ownership rule: callers that mutate a rendered value must copy it first.
    m = twin("mapping")
    assert (
        m.compile_template("${workflow.input.obj}").render(CTX) is CTX["workflow"]["input"]["obj"]
    )


def test_missing_root_and_empty_context(twin: TwinLoader) -> None:
    m = twin("mapping")
    template = {"a": "${workflow.input.x}", "b": "id=${CPEWF_TASK_ID}"}
    assert m.compile_template(template).render({}) == {"a": None, "b": "id=null"}


def test_context_may_be_any_mapping(twin: TwinLoader) -> None:
    m = twin("mapping")
    compiled = m.compile_template({"a": "${w.x}", "b": "x${w.x}", "c": ["${w.x}"]})
    expected = {"a": 1, "b": "x1", "c": [1]}
    assert compiled.render(collections.OrderedDict(w={"x": 1})) == expected
    assert compiled.render(types.MappingProxyType({"w": {"x": 1}})) == expected


def test_none_valued_root(twin: TwinLoader) -> None:
    m = twin("mapping")
    assert m.compile_template("${t1.output}").render({"t1": None}) is None


def test_tuple_and_subclass_containers_in_context(twin: TwinLoader) -> None:
    m = twin("mapping")

    class Sub(dict[str, Any]):
        pass

    ctx = {"t": Sub(output=(1, Sub(k="v")))}
    assert m.compile_template("${t.output[1].k}").render(ctx) == "v"
    assert m.compile_template("${t.output[-2]}").render(ctx) == 1


def test_roots(twin: TwinLoader) -> None:
    m = twin("mapping")
    template = {
        "a": "${workflow.input.x}",
        "b": ["x ${task_1.output.y} ${CPEWF_TASK_ID}"],
        "c": "${workflow.input.${lookup.output.key}}",
        "d": "${$.dollar_root.a}",
        "e": "${['bracket root'].a}",
        "f": "${deep_root..status}",
        "g": "$${escaped.root}",
    }
    compiled = m.compile_template(template)
    assert compiled.roots == frozenset(
        {
            "workflow",
            "task_1",
            "CPEWF_TASK_ID",
            "lookup",
            "dollar_root",
            "bracket root",
            "deep_root",
        }
    )
    assert not compiled.dynamic_roots
    assert not compiled.is_constant


@pytest.mark.parametrize(
    "template",
    ["${${workflow.input.ref}.output.count}", "${$..status}", "${$}", "${*.output}"],
)
def test_dynamic_roots(twin: TwinLoader, template: str) -> None:
    m = twin("mapping")
    assert m.compile_template(template).dynamic_roots


def test_deep_scan_from_the_document_root(twin: TwinLoader) -> None:
    m = twin("mapping")
    assert m.compile_template("${$..result}").render(CTX) == ["dash"]


def test_nested_path_cache_gives_fresh_results_per_context(twin: TwinLoader) -> None:
    m = twin("mapping")
    compiled = m.compile_template("${workflow.input.${workflow.input.key}}")
    for key in ["x", "s", "x", "missing", "s"]:
        ctx = {"workflow": {"input": {"key": key, "x": 1, "s": "str"}}}
        assert compiled.render(ctx) == {"x": 1, "s": "str"}.get(key)


def test_render_convenience_function(twin: TwinLoader) -> None:
    m = twin("mapping")
    assert m.render({"a": "${workflow.input.x}"}, CTX) == {"a": 1}


def test_public_facade_follows_the_switch() -> None:
    import hotpath
    from hotpath import mapping

    expected = "hotpath.mapping_py" if hotpath.PURE_PYTHON else "hotpath.mapping_c"
    assert mapping.compile_template.__module__ == expected
    assert mapping.render("${a}", {"a": 1}) == 1


JAVA_STRINGS: list[tuple[Any, str]] = [
    (None, "null"),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (-5, "-5"),
    (10**20, "100000000000000000000"),
    (1.5, "1.5"),
    (1.0, "1.0"),
    (100.0, "100.0"),
    (-0.0, "-0.0"),
    (0.001, "0.001"),
    (0.0005, "5.0E-4"),
    (9999999.0, "9999999.0"),
    (1e7, "1.0E7"),
    (12345678.9, "1.23456789E7"),
    (-2.5e-10, "-2.5E-10"),
    (1e21, "1.0E21"),
    (float("nan"), "NaN"),
    (float("inf"), "Infinity"),
    (float("-inf"), "-Infinity"),
    ("text", "text"),
    ("", ""),
    ({}, "{}"),
    ([], "[]"),
    ({"a": 1, "b": "x"}, "{a=1, b=x}"),
    ([1, "x", None], "[1, x, null]"),
    ({"k": [1.0, {"n": False}]}, "{k=[1.0, {n=false}]}"),
]


@pytest.mark.parametrize(("value", "expected"), JAVA_STRINGS, ids=[e for _, e in JAVA_STRINGS])
def test_java_string(twin: TwinLoader, value: Any, expected: str) -> None:
    assert twin("mapping").java_string(value) == expected
