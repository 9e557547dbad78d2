"""Mapping failures: exact MappingError texts at compile time; no environment leaks."""

from __future__ import annotations

import os
from typing import Any

import pytest

from core.errors import BadRequest, MappingError
from tests.conftest import TwinLoader

UNPARSABLE: list[tuple[Any, str]] = [
    (
        "${workflow.input",
        "cannot parse '${workflow.input' at offset 0: unterminated '${': add the closing '}'",
    ),
    (
        "ok ${a.${b}",
        "cannot parse '${a.${b}' at offset 3: unterminated '${': add the closing '}'",
    ),
    (
        "x ${t1.output[}",
        "cannot parse '${t1.output[}' at offset 13: unterminated '[': add the closing ']'",
    ),
    (
        "${a[0}",
        "cannot parse '${a[0}' at offset 3: unterminated '[': add the closing ']'",
    ),
    (
        "${a[x]}",
        "cannot parse '${a[x]}' at offset 4: expected an integer index or a quoted key "
        "after '[' (e.g. [0] or ['name'])",
    ),
    (
        "${a[]}",
        "cannot parse '${a[]}' at offset 3: empty brackets '[]': use an integer index or a "
        "quoted key",
    ),
    (
        "${a[0x]}",
        "cannot parse '${a[0x]}' at offset 5: expected ']' after the index",
    ),
    (
        "${a['x}",
        "cannot parse \"${a['x}\" at offset 4: unterminated quoted key: add the closing quote (')",
    ),
    (
        "${a['x' y]}",
        "cannot parse \"${a['x' y]}\" at offset 8: expected ']' after the quoted key",
    ),
    (
        "${a['b']c}",
        "cannot parse \"${a['b']c}\" at offset 8: expected '.' or '[' after ']'",
    ),
    (
        "${a]}",
        "cannot parse '${a]}' at offset 3: unexpected ']' without a matching '['",
    ),
    (
        "${workflow.input.first name}",
        "cannot parse '${workflow.input.first name}' at offset 22: whitespace in the name "
        "'first': use bracket notation ['...']",
    ),
    (
        "${workflow.input.}",
        "cannot parse '${workflow.input.}' at offset 16: a path must not end with '.'",
    ),
    (
        "${.x}",
        "cannot parse '${.x}' at offset 2: expected a name",
    ),
    (
        "${$.}",
        "cannot parse '${$.}' at offset 4: expected a name after '$.'",
    ),
    (
        '${a."b"}',
        'cannot parse \'${a."b"}\' at offset 4: quoted names need bracket notation: ["..."]',
    ),
    (
        "${a.b,c}",
        "cannot parse '${a.b,c}' at offset 5: unexpected ',' outside brackets",
    ),
    (
        "${a.f(}",
        "cannot parse '${a.f(}' at offset 5: unterminated '(': add the closing ')'",
    ),
    (
        "${a.${b[}}",
        "cannot parse '${b[}' at offset 7: unterminated '[': add the closing ']'",
    ),
    (
        {"in": {"list": ["fine", "${t1.output[x]}"]}},
        "cannot parse '${t1.output[x]}' at offset 12 in $.in.list[1]: expected an integer "
        "index or a quoted key after '[' (e.g. [0] or ['name'])",
    ),
]


@pytest.mark.parametrize(("template", "message"), UNPARSABLE, ids=[m for _, m in UNPARSABLE])
def test_unparsable_expression_message(twin: TwinLoader, template: Any, message: str) -> None:
    m = twin("mapping")
    with pytest.raises(MappingError) as info:
        m.compile_template(template)
    assert str(info.value) == message
    assert info.value.message == message


def test_location_uses_brackets_for_odd_keys(twin: TwinLoader) -> None:
    m = twin("mapping")
    with pytest.raises(MappingError) as info:
        m.compile_template({"task-1": {"a b": [0, {"ok": "${x[}"}]}})
    assert str(info.value) == (
        "cannot parse '${x[}' at offset 3 in $['task-1']['a b'][1].ok: "
        "unterminated '[': add the closing ']'"
    )


def test_library_syntax_error_names_expression_and_offset(twin: TwinLoader) -> None:
    m = twin("mapping")
    with pytest.raises(MappingError) as info:
        m.compile_template("v=${t1.output[?(@.x]}")
    # The detail after the prefix is the JSONPath library's own explanation.
    assert str(info.value).startswith(
        "cannot parse '${t1.output[?(@.x]}' at offset 4: invalid JSONPath: "
    )


def test_mapping_error_is_a_400(twin: TwinLoader) -> None:
    m = twin("mapping")
    with pytest.raises(BadRequest) as info:
        m.render("${", {})
    assert info.value.http_status == 400


def test_render_convenience_raises_the_same_error(twin: TwinLoader) -> None:
    m = twin("mapping")
    with pytest.raises(
        MappingError, match=r"^cannot parse '\$\{a\[\]\}' at offset 3 in \$\.k: empty"
    ):
        m.render({"k": "${a[]}"}, {"a": [1]})


@pytest.mark.parametrize("name", ["HOME", "PATH", "PODIUM_MAPPING_TEST_SECRET", "USER"])
def test_environment_variables_never_leak(
    twin: TwinLoader, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_MAPPING_TEST_SECRET", "s3cret")
    monkeypatch.setenv("HOME", os.environ.get("HOME", "/root"))
    m = twin("mapping")
    whole = m.compile_template("${" + name + "}")
    embedded = m.compile_template("value=${" + name + "}")
    nested = m.compile_template("${workflow.input.${" + name + "}}")
    ctx = {"workflow": {"input": {"null": "the nested lookup used the string 'null'"}}}
    assert whole.render(ctx) is None
    assert embedded.render(ctx) == "value=null"
    assert nested.render(ctx) == "the nested lookup used the string 'null'"
    assert whole.roots == frozenset({name})


def test_jvm_style_properties_and_netflix_names_are_null(twin: TwinLoader) -> None:
    m = twin("mapping")
    template = {"a": "${user.home}", "b": "${NETFLIX_ENV}", "c": "${java.version}"}
    assert m.compile_template(template).render({}) == {"a": None, "b": None, "c": None}


def test_values_are_never_re_evaluated(twin: TwinLoader) -> None:
    # A context value that looks like an expression is data, not a template.
    m = twin("mapping")
    ctx = {"workflow": {"input": {"evil": "${HOME}", "key": "${HOME}"}}}
    assert m.render("${workflow.input.evil}", ctx) == "${HOME}"
    assert m.render("x ${workflow.input.evil}", ctx) == "x ${HOME}"
    assert m.render("${workflow.input.${workflow.input.key}}", ctx) is None


def test_render_never_raises_on_odd_data(twin: TwinLoader) -> None:
    m = twin("mapping")
    template = {
        "a": "${t.output.x[0].y}",
        "b": "${t.output..y}",
        "c": "${t.output.x.sum()}",
        "d": "${t.output.${t.output.x}}",
        "e": "s=${t.output}",
    }
    odd_contexts: list[dict[str, Any]] = [
        {"t": 5},
        {"t": "string"},
        {"t": {"output": {"x": "abc"}}},
        {"t": {"output": {"x": [None, {"y": None}]}}},
        {"t": {"output": {"x": {"0": 1}}}},
        {"t": {"output": [1, 2]}},
        {"t": {"output": {"x": ["a", "b"]}}},
    ]
    compiled = m.compile_template(template)
    for ctx in odd_contexts:
        result = compiled.render(ctx)
        assert set(result) == {"a", "b", "c", "d", "e"}
        assert result["a"] is None
