"""JavaScript evaluation: completion values, JSON conversion, Java-isms, isolation, limits."""

from __future__ import annotations

import math
import threading
import time
import weakref
from typing import Any

import pytest
import trio
from hypothesis import given, settings

from server.scripting import ScriptError, ScriptTimeout, evaluate_js, evaluate_lambda, js_truthy
from server.scripting import js as js_module
from tests.server.json_values import JSON_VALUES

# ---------------------------------------------------------------- completion values


@pytest.mark.parametrize(
    ("iteration", "expected"),
    [(1, True), (2, True), (3, False), (7, False)],
)
def test_sdk_loop_condition_statement_completion_value(iteration: int, expected: bool) -> None:
    # conductor-python's LoopTask emits exactly this shape of statement.
    script = "if ( $.loop.iteration < 3 ) { true; } else { false; }"
    assert evaluate_js(script, {"loop": {"iteration": iteration}}) is expected


def test_sdk_inline_iife_returns_object() -> None:
    script = "(function () { return {sum: $.a + $.b, tag: 'x'}; })();"
    assert evaluate_js(script, {"a": 2, "b": 3}) == {"sum": 5, "tag": "x"}


def test_function_declaration_then_call_returns_call_value() -> None:
    assert evaluate_js("function f() { return $.n * 2; } f();", {"n": 21}) == 42


def test_trailing_declaration_has_no_completion_value() -> None:
    assert evaluate_js("var x = 5;", {}) is None
    assert evaluate_js("function f() {}", {}) is None


def test_dollar_may_be_any_json_value() -> None:
    assert evaluate_js("$ + 1", 41) == 42
    assert evaluate_js("$ === null", None) is True
    assert evaluate_js("$.length", [1, 2, 3]) == 3
    assert evaluate_js("$.toUpperCase()", "abc") == "ABC"


def test_this_is_the_global_object_like_nashorn() -> None:
    assert evaluate_js("this === globalThis", {}) is True


# ---------------------------------------------------------------- JSON conversion


def test_integral_numbers_are_ints_fractions_are_floats() -> None:
    assert evaluate_js("[1, 1.5, 2.0, -0, 3 / 2, 6 / 2]", {}) == [1, 1.5, 2, 0, 1.5, 3]
    one, one_and_half = evaluate_js("[1, 1.5]", {})
    assert type(one) is int
    assert type(one_and_half) is float
    assert type(evaluate_js("6 / 2", {})) is int


def test_integers_outside_int64_become_floats() -> None:
    assert evaluate_js("2 ** 62", {}) == 2**62  # printed by JS as 4611686018427388000
    assert evaluate_js("2 ** 62 + [1e3][0]", {}) == 2**62 + 1024  # the exact double
    assert type(evaluate_js("2 ** 62", {})) is int
    big = evaluate_js("[1e20, 2 ** 63, -(2 ** 63) * 2, {n: 1e19}]", {})
    assert big == [1e20, 2.0**63, -(2.0**64), {"n": 1e19}]
    assert all(type(x) is float for x in big[:3])
    assert type(big[3]["n"]) is float


def test_undefined_and_functions_become_none() -> None:
    assert evaluate_js("undefined", {}) is None
    assert evaluate_js("(function () {})", {}) is None
    assert evaluate_js("[undefined, function () {}, null]", {}) == [None, None, None]
    assert evaluate_js("({a: undefined, b: 1})", {}) == {"b": 1}


def test_non_finite_numbers_become_none() -> None:
    assert evaluate_js("[NaN, Infinity, -Infinity]", {}) == [None, None, None]


def test_nested_values_round_trip() -> None:
    value: dict[str, Any] = {
        "a": [1, 2.5, None, True, "s", {"b": {"c": []}}],
        "d": {},
        "e": "\u00e9\u4e2d\n",
    }
    assert evaluate_js("$", value) == value
    assert evaluate_js("JSON.parse(JSON.stringify($))", value) == value


def test_bigint_result_is_a_number() -> None:
    assert evaluate_js("10n ** 3n", {}) == 1000


def test_circular_result_is_a_script_error() -> None:
    with pytest.raises(ScriptError, match="circular"):
        evaluate_js("var o = {}; o.self = o; o", {})


def test_bindings_that_are_not_json_are_a_script_error() -> None:
    with pytest.raises(ScriptError, match="the bindings cannot be encoded as JSON"):
        evaluate_js("$", {"x": object()})


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES)
def test_property_bindings_round_trip(value: Any) -> None:
    assert evaluate_js("$", value) == value


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("syntax error (", "SyntaxError: expecting ';'"),
        ("missing.name", "ReferenceError: 'missing' is not defined"),
        ("null.x", "TypeError: cannot read property 'x' of null"),
        ("throw new Error('boom')", "Error: boom"),
        ("throw 'plain'", "plain"),
        ("throw 42", "42"),
    ],
)
def test_errors_carry_the_engine_message_first_line(script: str, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        evaluate_js(script, {})
    assert info.value.message == message
    assert not isinstance(info.value, ScriptTimeout)


def test_script_must_be_a_string() -> None:
    with pytest.raises(ScriptError, match="the script must be a string, not int"):
        evaluate_js(5, {})  # type: ignore[arg-type]
    with pytest.raises(ScriptError, match="the script must be a string, not NoneType"):
        evaluate_lambda(None, {})  # type: ignore[arg-type]


def test_nul_in_source_is_rejected_rather_than_truncated() -> None:
    with pytest.raises(ScriptError, match="NUL"):
        evaluate_js("1;\x00 throw 1", {})


def test_recursion_overflow_is_a_clean_error_and_context_survives() -> None:
    with pytest.raises(ScriptError, match="stack overflow"):
        evaluate_js("function r(n) { return r(n + 1) + 1; } r(0);", {})
    assert evaluate_js("1 + 1", {}) == 2


def test_memory_blow_up_is_a_clean_error_and_next_eval_works() -> None:
    with pytest.raises(ScriptError, match="out of memory") as info:
        evaluate_js("var a = []; while (true) a.push(new Array(1e6));", {})
    assert not isinstance(info.value, ScriptTimeout)
    assert evaluate_js("[1, 2].length", {}) == 2


def test_string_growth_past_the_limit_is_out_of_memory() -> None:
    with pytest.raises(ScriptError, match=r"out of memory \(limit 8 MiB\)"):
        evaluate_js("'x'.repeat(2 ** 24)", {}, memory_limit_bytes=8 * 1024 * 1024)
    assert evaluate_js("'ok'", {}) == "ok"


def test_runaway_loop_times_out_and_context_is_reusable() -> None:
    started = time.monotonic()
    with pytest.raises(ScriptTimeout, match=r"time limit of 0\.2 s"):
        evaluate_js("while (true) {}", {}, timeout_s=0.2)
    # Generous bound: the point is that it stops at all, not how fast.
    assert time.monotonic() - started < 5
    assert evaluate_js("$.a", {"a": 7}) == 7


def test_timeout_cannot_be_caught_by_the_script() -> None:
    with pytest.raises(ScriptTimeout):
        evaluate_js("try { while (true) {} } catch (e) { 'caught'; }", {}, timeout_s=0.2)


def test_script_cannot_forge_the_timeout_message() -> None:
    assert evaluate_js("typeof InternalError", {}) == "undefined"
    with pytest.raises(ScriptError) as info:
        evaluate_js("throw new Error('interrupted')", {})
    assert not isinstance(info.value, ScriptTimeout)


def test_non_positive_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout_s must be positive, not 0"):
        evaluate_js("1", {}, timeout_s=0)
    with pytest.raises(ValueError, match="memory_limit_bytes must be positive, not 0"):
        evaluate_js("1", {}, memory_limit_bytes=0)


# ---------------------------------------------------------------- isolation between evaluations


def test_declarations_do_not_leak_into_the_next_evaluation() -> None:
    evaluate_js("var leaked = 1; function leakedFn() { return 2; } leakedFn();", {})
    assert evaluate_js("typeof leaked + ',' + typeof leakedFn", {}) == "undefined,undefined"


def test_implicit_globals_are_forgotten_after_the_evaluation() -> None:
    assert evaluate_js("counter = ($.start || 0) + 1; counter", {"start": 4}) == 5
    assert evaluate_js("typeof counter", {}) == "undefined"


def test_previous_bindings_are_not_visible() -> None:
    evaluate_js("$.a", {"a": "first"})
    assert evaluate_js("$.a === undefined", {"b": 1}) is True


def test_replaced_or_deleted_builtin_globals_are_put_back() -> None:
    evaluate_js("1", {})
    engine = js_module._local.engine
    script = "JSON = null; Math = 1; delete globalThis.parseInt; this.Array = 0; 'changed'"
    assert evaluate_js(script, {}) == "changed"
    restored = "[typeof JSON.parse, typeof Math.max, typeof parseInt, Array.isArray([])]"
    assert evaluate_js(restored, {}) == ["function", "function", "function", True]
    assert js_module._local.engine is engine  # put back in place, no new context needed


def test_unrestorable_globals_replace_the_context() -> None:
    evaluate_js("1", {})
    engine = js_module._local.engine
    stuck = "Object.defineProperty(globalThis, 'stuck', {value: 1, enumerable: true}); 'ok'"
    assert evaluate_js(stuck, {}) == "ok"
    assert js_module._local.engine is not engine
    assert evaluate_js("typeof stuck", {}) == "undefined"
    engine = js_module._local.engine
    getter = "Object.defineProperty(globalThis, 'Math', {get: function () { throw 1; }}); 2"
    assert evaluate_js(getter, {}) == 2
    assert js_module._local.engine is not engine
    assert evaluate_js("Math.max(1, 3)", {}) == 3


def test_unrestorable_globals_after_a_failing_script_replace_the_context() -> None:
    evaluate_js("1", {})
    engine = js_module._local.engine
    script = "Object.defineProperty(globalThis, 'stuck', {value: 1, enumerable: true}); null.x"
    with pytest.raises(ScriptError, match="TypeError"):
        evaluate_js(script, {})
    assert js_module._local.engine is not engine
    assert evaluate_js("typeof stuck", {}) == "undefined"


def test_promise_jobs_do_not_outlive_their_evaluation() -> None:
    evaluate_js("1", {})
    engine = js_module._local.engine
    evaluate_js("[1].map(function (x) { return x; })", {})
    assert js_module._local.engine is engine  # no queued job: the context is kept
    script = "Promise.resolve(1).then(function () { leakedByJob = 1; }); 'done'"
    assert evaluate_js(script, {}) == "done"
    assert js_module._local.engine is not engine  # queued job: the context is replaced
    assert evaluate_js("typeof leakedByJob", {}) == "undefined"
    # An async function suspended at `await` never resumes into a later evaluation.
    engine = js_module._local.engine
    script = "async function f() { await null; while (true) {} } f(); 'started'"
    assert evaluate_js(script, {}, timeout_s=0.2) == "started"
    assert js_module._local.engine is not engine
    assert evaluate_js("1 + 1", {}) == 2


def test_helpers_are_not_reachable_by_scripts() -> None:
    for name in ("run", "evaluate", "parse", "stringify", "forgetNewGlobals", "adoptMaps"):
        assert evaluate_js(f"typeof {name}", {}) == "undefined", name


def test_script_shadowing_engine_names_does_not_break_the_result() -> None:
    script = "var stringify = 1, parse = 2, JSON = null; function forgetNewGlobals() {} 'ok';"
    assert evaluate_js(script, {}) == "ok"
    assert evaluate_js("JSON.stringify([1])", {}) == "[1]"


# ---------------------------------------------------------------- Java-isms (Nashorn/GraalJS)


def test_list_methods() -> None:
    bindings = {"list": [{"x": [1]}, 2, "s"]}
    assert evaluate_js("$.list.get(1)", bindings) == 2
    assert evaluate_js("$.list.size()", bindings) == 3
    assert evaluate_js("$.list.isEmpty()", bindings) is False
    assert evaluate_js("[].isEmpty()", {}) is True
    assert evaluate_js(
        "[$.list.contains({x: [1]}), $.list.contains('s'), $.list.contains(9)]", bindings
    ) == [
        True,
        True,
        False,
    ]
    assert evaluate_js("var l = []; l.add(1); l.add('a'); l", {}) == [1, "a"]


def test_list_get_out_of_range_throws_like_java() -> None:
    with pytest.raises(ScriptError, match="RangeError: Index 3 out of bounds for length 3"):
        evaluate_js("$.list.get(3)", {"list": [1, 2, 3]})


def test_map_methods() -> None:
    bindings = {"m": {"a": 1, "b": {"c": 2}}}
    assert evaluate_js("$.m.get('a')", bindings) == 1
    assert evaluate_js("$.m.get('b').get('c')", bindings) == 2
    assert evaluate_js("$.m.get('zz') === null", bindings) is True
    assert evaluate_js("$.m.getOrDefault('zz', 5)", bindings) == 5
    assert evaluate_js("[$.m.containsKey('a'), $.m.containsKey('zz')]", bindings) == [True, False]
    assert evaluate_js("$.m.size()", bindings) == 2
    assert evaluate_js("$.m.isEmpty()", bindings) is False
    assert evaluate_js("$.m.keySet()", bindings) == ["a", "b"]
    assert evaluate_js("$.m.keySet().contains('b')", bindings) is True
    assert evaluate_js("$.m.values().size()", bindings) == 2
    assert evaluate_js("$.size()", bindings) == 1


def test_map_methods_reach_maps_nested_in_lists() -> None:
    bindings = {"rows": [[{"id": "r1"}], {"inner": {"id": "r2"}}]}
    assert evaluate_js("$.rows.get(0).get(0).get('id')", bindings) == "r1"
    assert evaluate_js("$.rows.get(1).get('inner').get('id')", bindings) == "r2"


def test_proto_named_key_is_plain_data() -> None:
    bindings = {"__proto__": {"a": 1}, "b": 2}
    assert evaluate_js("$", bindings) == bindings
    assert evaluate_js("[$.get('__proto__'), $.size()]", bindings) == [{"a": 1}, 2]


def test_string_methods() -> None:
    bindings = {"s": "Hello"}
    assert evaluate_js("[$.s.equals('Hello'), $.s.equals('hello')]", bindings) == [True, False]
    assert evaluate_js("$.s.equalsIgnoreCase('HELLO')", bindings) is True
    assert evaluate_js("[$.s.contains('ell'), ''.isEmpty()]", bindings) == [True, True]


def test_polyfills_are_invisible_to_json_and_enumeration() -> None:
    bindings = {"m": {"a": 1}, "l": [1, 2]}
    assert evaluate_js("$", bindings) == bindings
    assert evaluate_js(
        "var k = []; for (var p in $.m) k.push(p); for (var i in $.l) k.push(i); k", bindings
    ) == [
        "a",
        "0",
        "1",
    ]
    assert evaluate_js("Object.keys($.m).concat(Object.keys($.l))", bindings) == ["a", "0", "1"]


def test_script_objects_keep_plain_semantics() -> None:
    # An inherited `get` would make every literal look like an accessor descriptor.
    assert evaluate_js("Object.defineProperty({}, 'x', {value: 1, enumerable: true})", {}) == {
        "x": 1
    }
    assert evaluate_js("({}).get === undefined", {}) is True
    # Assigning over a polyfilled name on a bound object creates an own property.
    assert evaluate_js("$.m.size = 3; $.m.get = 4; $.m", {"m": {}}) == {"size": 3, "get": 4}


def test_bound_key_shadows_polyfill() -> None:
    assert evaluate_js("$.size", {"size": 10}) == 10


# ---------------------------------------------------------------- LAMBDA


def test_lambda_wraps_a_function_body() -> None:
    script = "if ($.input.a == 1) { return {testvalue: true}; } else { return {testvalue: false}; }"
    assert evaluate_lambda(script, {"input": {"a": 1}}) == {"testvalue": True}
    assert evaluate_lambda(script, {"input": {"a": 2}}) == {"testvalue": False}


def test_lambda_tolerates_a_trailing_line_comment() -> None:
    assert evaluate_lambda("return $.x; // done", {"x": 3}) == 3


def test_lambda_without_return_is_none() -> None:
    assert evaluate_lambda("var y = 1;", {}) is None


# ---------------------------------------------------------------- truthiness


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0.5, True),
        (0, False),
        (-1, False),
        (math.nan, False),
        ("true", False),
        ("1", False),
        (None, False),
        ([1], False),
        ({"a": 1}, False),
    ],
)
def test_js_truthy_follows_conductor(value: Any, expected: bool) -> None:
    assert js_truthy(value) is expected


# ---------------------------------------------------------------- threads


# A little work per call (the loop adds 0 + 1 + ... + 199 = 19900) so that threads overlap.
_SQUARE = (
    "function sq() { var r = 0; for (var i = 0; i < 200; i++) { r += i; }\n"
    "  return $.n * $.n + r; }\nsq();"
)


def test_concurrent_threads_each_get_right_results() -> None:
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    def worker(thread_no: int) -> None:
        try:
            results[thread_no] = [
                evaluate_js(_SQUARE, {"n": thread_no * 100 + i}) for i in range(100)
            ]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(6):
        assert results[n] == [(n * 100 + i) ** 2 + 19900 for i in range(100)]


def test_each_thread_handles_its_own_overflow_timeout_and_oom() -> None:
    outcomes: list[str] = []

    def worker() -> None:
        for script, timeout_s in (
            ("function r(n) { return r(n + 1) + 1; } r(0);", 4.0),
            ("while (true) {}", 0.2),
            ("var a = []; while (true) a.push(new Array(1e6));", 4.0),
        ):
            try:
                evaluate_js(script, {}, timeout_s=timeout_s)
            except ScriptTimeout:
                outcomes.append("timeout")
            except ScriptError as exc:
                outcomes.append(exc.message)
        outcomes.append(str(evaluate_js("$.ok", {"ok": "fine"})))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert outcomes[0] == "InternalError: stack overflow"
    assert outcomes[1] == "timeout"
    assert "out of memory" in outcomes[2]
    assert outcomes[3] == "fine"


def test_discarded_context_dies_on_its_own_thread_not_in_the_traceback() -> None:
    # trio.to_thread re-raises a worker's exception on the trio thread; if the traceback
    # kept the discarded context alive, it would be freed there, off its own thread.
    seen: dict[str, Any] = {}

    def worker() -> None:
        evaluate_js("1", {})
        seen["engine"] = weakref.ref(js_module._local.engine)
        try:
            evaluate_js("while (true) {}", {}, timeout_s=0.1)
        except ScriptTimeout as exc:
            seen["error"] = exc
            seen["alive_while_error_held"] = seen["engine"]() is not None

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert isinstance(seen["error"], ScriptTimeout)
    assert seen["alive_while_error_held"] is False


async def test_trio_thread_and_worker_threads_both_evaluate() -> None:
    script = "if ($.i % 2 == 0) { 'even'; } else { 'odd'; }"
    on_loop = evaluate_js(script, {"i": 2})
    results: list[str] = []

    async def one(i: int) -> None:
        results.append(await trio.to_thread.run_sync(evaluate_js, script, {"i": i}))

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(one, i)
    assert on_loop == "even"
    assert sorted(results) == ["even"] * 10 + ["odd"] * 10
    # Recursion overflow inside a worker thread is clean, not a crash.
    with pytest.raises(ScriptError, match="stack overflow"):
        await trio.to_thread.run_sync(evaluate_js, "function r() { return r() + 1; } r();", {})
