"""The `${...}` parameter-mapping engine: compile a JSON template once, render it many times.

Rules:
- Single source: this file runs as pure Python (`hotpath.mapping_py`) and is compiled by
  Cython as `hotpath.mapping_c`, typed by `mapping_c.pxd` (the node classes become
  extension types). Keep the render path free of closures, generators and try/except in
  loops so Cython can type it; parsing lives in `hotpath.mapping_parse` (not hot).
- Semantics follow Conductor's current `ParametersUtils` (spec 6.2; every deliberate
  difference is in docs/compatibility.md): a string that is exactly one expression renders
  to the raw value; embedded expressions concatenate `java_string` values (null -> "null");
  dicts and lists recurse (keys are never evaluated); other scalars pass through.
- A root missing from the context is null; so is any unknown name: the process environment
  and system properties are never consulted (Conductor resolves `${HOME}`; Podium doesn't).
- Rendering never raises on data: a missing or mistyped path step, a failing JSONPath, or a
  malformed nested (render-time) path yields null. Only compile raises, with MappingError.
- Ownership: every dict and list built from the template is new on each render (so callers
  may mutate the result), but values taken from the context are returned as they are,
  not copied: `"${t1.output}"` returns the context's own dict.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, cast

from core.errors import MappingError
from hotpath import jsonpath_fallback
from hotpath.mapping_parse import Expr, Path, TemplateSyntax, parse_path, scan

__all__ = ["MappingError", "Template", "compile_template", "java_string", "render"]

# Nested expressions build path text at render time; each node caches the parsed result
# for this many distinct texts (render stays pure: the cache only memoises parsing).
_DYNAMIC_CACHE_SIZE = 128


class Node:
    """A compiled piece of a template; `render` maps a context to a JSON value.

    A node has exactly one parent, which links its children through `next` (the following
    sibling) and `key` (the dict key, for dict entries): the compiled render loops then
    follow typed attributes instead of indexing tuples and type-checking each item.
    """

    def __init__(self) -> None:
        self.next: Node | None = None
        self.key: Any = None

    def render(self, ctx: dict[str, Any]) -> Any:
        """Render this piece against `ctx` (root name -> value)."""
        raise NotImplementedError


def _link(nodes: list[Node], keys: tuple[Any, ...] | None = None) -> Node | None:
    """Chain `nodes` through `next` (and set each `key`); returns the first node or None."""
    first: Node | None = None
    previous: Node | None = None
    for i, node in enumerate(nodes):
        if keys is not None:
            node.key = keys[i]
        if previous is None:
            first = node
        else:
            previous.next = node
        previous = node
    return first


class Const(Node):
    """A scalar constant (string without expressions, number, bool, null)."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def render(self, ctx: dict[str, Any]) -> Any:
        return self.value


class Ref(Node):
    """A fast-path reference: a root name then dict keys (str) and list indexes (int)."""

    def __init__(self, root: str, steps: tuple[str | int, ...]) -> None:
        super().__init__()
        self.root = root
        self.steps = steps

    def render(self, ctx: dict[str, Any]) -> Any:
        value = ctx.get(self.root)
        if value is None:
            return None
        return _walk(value, self.steps)


class JsonPathRef(Node):
    """A reference that needs the full JSONPath library (deep scan, wildcards, filters)."""

    def __init__(self, query: jsonpath_fallback.Query) -> None:
        super().__init__()
        self.query = query

    def render(self, ctx: dict[str, Any]) -> Any:
        return self.query.evaluate(ctx)


class DynamicRef(Node):
    """A reference whose path text contains nested expressions, resolved first as strings."""

    def __init__(self, parts: list[Node]) -> None:
        super().__init__()
        self.first = _link(parts)
        self.cache: dict[str, Node] = {}

    def render(self, ctx: dict[str, Any]) -> Any:
        text = _concat(self.first, ctx)
        node = self.cache.get(text)
        if node is None:
            node = _compile_dynamic_path(text)
            if len(self.cache) < _DYNAMIC_CACHE_SIZE:
                self.cache[text] = node
        return node.render(ctx)


class Interp(Node):
    """Text with embedded expressions: the parts' `java_string`s concatenated."""

    def __init__(self, parts: list[Node]) -> None:
        super().__init__()
        self.first = _link(parts)

    def render(self, ctx: dict[str, Any]) -> Any:
        return _concat(self.first, ctx)


class DictNode(Node):
    """A dict: keys are kept verbatim, values rendered; a new dict each render.

    `base` holds every key in template order, with the constant scalar values filled in
    (None stands for the others): a render copies it, which clones the hash table in one
    C-level step, then sets the rendered entries, found by the same key objects.
    """

    def __init__(self, keys: tuple[Any, ...], values: list[Node]) -> None:
        super().__init__()
        self.base: dict[Any, Any] = {}
        dynamic: list[Node] = []
        dynamic_keys: list[Any] = []
        for key, node in zip(keys, values, strict=True):
            if isinstance(node, Const):
                self.base[key] = node.value
            else:
                self.base[key] = None
                dynamic.append(node)
                dynamic_keys.append(key)
        self.first = _link(dynamic, tuple(dynamic_keys))

    def render(self, ctx: dict[str, Any]) -> Any:
        out = self.base.copy()
        node = self.first
        while node is not None:
            out[node.key] = node.render(ctx)
            node = node.next
        return out


class ListNode(Node):
    """A list (a tuple in the template renders as a list too); a new list each render.

    As for dicts, constant scalars are pre-filled in `base` (copied per render) and only
    the other items are rendered, into their index (`key`); without constants `base` is
    None and a render appends to a fresh list.
    """

    def __init__(self, items: list[Node]) -> None:
        super().__init__()
        base: list[Any] = []
        dynamic: list[Node] = []
        indexes: list[int] = []
        for index, node in enumerate(items):
            if isinstance(node, Const):
                base.append(node.value)
            else:
                base.append(None)
                dynamic.append(node)
                indexes.append(index)
        self.base = base if len(dynamic) < len(items) else None
        self.first = _link(dynamic, tuple(indexes))

    def render(self, ctx: dict[str, Any]) -> Any:
        node = self.first
        if self.base is None:
            out = []
            while node is not None:
                out.append(node.render(ctx))
                node = node.next
            return out
        out = self.base[:]
        while node is not None:
            index = node.key
            out[index] = node.render(ctx)
            node = node.next
        return out


class Template:
    """A compiled template. Build it with `compile_template`; render it many times.

    Attributes:
        roots: every context root name referenced (e.g. "workflow", a task reference name,
            "CPEWF_TASK_ID"); names inside nested expressions included.
        dynamic_roots: True if some expression's root is known only at render time
            (`${${workflow.input.ref}.output}`, `${$..status}`); the context must then hold
            every root a render could name.
        is_constant: True if the template holds no expression and no escape, so every
            render equals the input value (a caller may then skip rendering).
        root_fields: per root in `roots`, the names of the first path steps read below
            it (`${t1.output.x}` reads "output" of t1), or None when the root may be read
            whole or by a step only known at render time (`${t1}`, `${t1[0]}`, JSONPath,
            nested expressions). A context entry for a root needs only those keys.
        root_io: per root, 1 | 2 when root_fields holds only "input" (1) and/or
            "output" (2), else 0.
        ctx_roots: the same as (root, io bits, kind) triples, kind 0 for "workflow", 1
            for "CPEWF_TASK_ID", 2 for a task reference name.
    """

    def __init__(
        self,
        node: Node,
        roots: frozenset[str],
        dynamic_roots: bool,
        is_constant: bool,
        root_fields: dict[str, frozenset[str] | None] | None = None,
    ) -> None:
        self.node = node
        self.roots = roots
        self.dynamic_roots = dynamic_roots
        self.is_constant = is_constant
        if root_fields is None:
            root_fields = dict.fromkeys(roots)
        self.root_fields = root_fields
        # The same as bits for the decider's context builder: 1 = "input", 2 = "output",
        # 0 = anything else (the root's whole context entry is needed).
        self.root_io = {root: _io_bits(fields) for root, fields in root_fields.items()}
        # (root, io bits, 0 = "workflow" / 1 = "CPEWF_TASK_ID" / 2 = a task reference)
        # for context builders that dispatch on the kind of root without comparing names.
        self.ctx_roots = tuple(
            [
                (root, io, 0 if root == "workflow" else 1 if root == "CPEWF_TASK_ID" else 2)
                for root, io in self.root_io.items()
            ]
        )

    def render(self, ctx: Mapping[str, Any]) -> Any:
        """Render against a context.

        Args:
            ctx: root name -> value (`"workflow"`, task reference names, `CPEWF_TASK_ID`);
                a missing root is null. A plain dict is used as is; any other mapping is
                copied into one first.

        Returns:
            A JSON value. Dicts and lists that come from the template are new objects;
            values taken from `ctx` are shared, not copied.
        """
        if type(ctx) is not dict:
            ctx = dict(ctx)  # the nodes are typed for a plain dict
        return self.node.render(ctx)

    def __repr__(self) -> str:
        return f"Template(roots={sorted(self.roots)!r}, is_constant={self.is_constant!r})"


def _io_bits(fields: frozenset[str] | None) -> int:
    if not fields or not fields <= {"input", "output"}:
        return 0
    return (1 if "input" in fields else 0) | (2 if "output" in fields else 0)


def _walk(value: Any, steps: tuple[Any, ...]) -> Any:
    """Follow dict keys (str) and list indexes (int); None as soon as a step does not apply."""
    for step in steps:
        if type(step) is str:
            if type(value) is dict:
                mapping = value  # typed `dict` in the pxd: a direct dict lookup
                value = mapping.get(step)
            elif isinstance(value, dict):
                value = value.get(step)
            else:
                return None
        elif type(value) is list:
            items = value  # typed `list` in the pxd
            size = len(items)
            index = step  # typed Py_ssize_t in the pxd (parse_path clamps indexes)
            if index < 0:
                index += size
            if index < 0 or index >= size:
                return None
            value = items[index]
        elif isinstance(value, (list, tuple)):
            size = len(value)
            index = step
            if index < 0:
                index += size
            if index < 0 or index >= size:
                return None
            value = value[index]
        else:
            return None
        if value is None:
            return None
    return value


def _concat(part: Node | None, ctx: dict[str, Any]) -> str:
    # Templates hold a few short pieces: plain concatenation beats building a list to join.
    text = ""
    while part is not None:
        value = part.render(ctx)
        if type(value) is str:
            text = text + value
        else:
            text = text + java_string(value)
        part = part.next
    return text


def java_string(value: Any) -> str:
    """Java's `String.valueOf` for JSON values, as Conductor concatenates them.

    Args:
        value: any JSON value.

    Returns:
        None -> "null", True -> "true", 1 -> "1", 1.5 -> "1.5", 1e7 -> "1.0E7",
        {"a": 1} -> "{a=1}", [1, "x"] -> "[1, x]"; strings are returned unchanged.
    """
    if type(value) is str:
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        items: list[str] = []
        for key, item in value.items():
            items.append(java_string(key) + "=" + java_string(item))
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        elements: list[str] = []
        for item in value:
            elements.append(java_string(item))
        return "[" + ", ".join(elements) + "]"
    return str(value)


def _java_double(value: float) -> str:
    """`Double.toString`: shortest digits, scientific below 1e-3 and from 1e7 on."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    sign = ""
    if text.startswith("-"):
        sign = "-"
        text = text[1:]
    magnitude = abs(value)
    if magnitude == 0.0 or (1e-3 <= magnitude < 1e7):
        return sign + text  # Python's repr is positional with ".0" in this range
    if "e" in text:
        mantissa, exp_text = text.split("e")
        exponent = int(exp_text)
        digits = mantissa.replace(".", "")
    else:
        whole, frac = text.split(".")
        if whole != "0":
            exponent = len(whole) - 1
            digits = whole + frac
        else:
            significant = frac.lstrip("0")
            exponent = -(len(frac) - len(significant) + 1)
            digits = significant
    digits = digits.rstrip("0") or "0"
    return sign + digits[0] + "." + (digits[1:] or "0") + "E" + str(exponent)


# ---------------------------------------------------------------------------------------
# Compilation (once per template; not hot).


class _Compiler:
    """Walks a JSON value, building nodes and collecting roots."""

    def __init__(self) -> None:
        self.roots: set[str] = set()
        # root -> first path steps read below it; None once the root may be read whole.
        self.fields: dict[str, set[str] | None] = {}
        self.dynamic_roots = False
        # False once anything renders differently from the input: an expression, an
        # escape (`$${` loses a `$`) or a tuple (rendered as a list).
        self.constant = True

    def value(self, value: Any, where: tuple[Any, ...]) -> Node:
        if type(value) is str:
            return self.string(value, where)
        if isinstance(value, dict):
            keys = tuple(value)
            return DictNode(keys, [self.value(value[k], (*where, k)) for k in keys])
        if isinstance(value, list | tuple):
            if type(value) is not list:
                self.constant = False
            return ListNode([self.value(v, (*where, i)) for i, v in enumerate(value)])
        if isinstance(value, str):
            return self.string(str(value), where)
        return Const(value)

    def string(self, text: str, where: tuple[Any, ...]) -> Node:
        if "${" not in text:
            return Const(text)
        self.constant = False
        try:
            parts = scan(text)
            nodes = [self.expr(p, text) if type(p) is Expr else Const(p) for p in parts]
        except TemplateSyntax as exc:
            raise MappingError(_error_message(text, exc, where)) from exc
        if len(nodes) == 1:
            return nodes[0]  # the whole string is one expression (or only literal text)
        constants = [n.value for n in nodes if isinstance(n, Const)]
        if len(constants) == len(nodes):  # only escapes: fold to one constant
            return Const("".join([java_string(v) for v in constants]))
        return Interp(nodes)

    def expr(self, expr: Expr, text: str) -> Node:
        if not expr.is_nested:
            body = "".join([p for p in expr.parts if type(p) is str])
            try:
                return self.path(body, expr.start + 2)
            except TemplateSyntax as exc:
                source = text[expr.start : expr.end]
                raise TemplateSyntax(exc.offset, exc.detail, source) from exc
        nodes: list[Node] = []
        for part in expr.parts:
            if type(part) is Expr:
                nodes.append(self.expr(part, text))
            else:
                nodes.append(Const(part))
        self._note_dynamic_root(expr)
        return DynamicRef(nodes)

    def path(self, body: str, offset: int) -> Node:
        stripped = body.strip()
        if not stripped:
            return Const("")  # `${}` and `${  }` render as ""
        lead = len(body) - len(body.lstrip())
        try:
            path = parse_path(stripped)
        except TemplateSyntax as exc:
            raise TemplateSyntax(offset + lead + exc.offset, exc.detail) from exc
        if path.root is None:
            self.dynamic_roots = True
        else:
            self.roots.add(path.root)
            steps = path.steps
            first = steps[0] if steps else None
            self._note_field(path.root, first if type(first) is str else None)
        try:
            return _path_node(path)
        except jsonpath_fallback.QuerySyntaxError as exc:
            raise TemplateSyntax(offset + lead, f"invalid JSONPath: {exc}") from exc

    def _note_dynamic_root(self, expr: Expr) -> None:
        # The root is static when the literal text before the first inner expression
        # already holds a complete root name, as in `workflow.input.${...}`.
        first = expr.parts[0]
        if type(first) is str:
            prefix = first.lstrip()
            if prefix.startswith("$."):
                prefix = prefix[2:]
            for end, char in enumerate(prefix):
                if char in ".[":
                    if end > 0 and prefix[0] not in "$[":
                        self.roots.add(prefix[:end])
                        self._note_field(prefix[:end], None)
                        return
                    break
        self.dynamic_roots = True

    def _note_field(self, root: str, field: str | None) -> None:
        # `field` None: the root is read whole (or by a step unknown until render time).
        if field is None:
            self.fields[root] = None
            return
        known = self.fields.get(root, set())
        if known is not None:
            known.add(field)
            self.fields[root] = known


def _path_node(path: Path) -> Node:
    if path.steps is None:
        return JsonPathRef(jsonpath_fallback.compile_query(cast(str, path.library_text)))
    # Interned names let dict lookups match the context's (usually interned) keys by
    # identity instead of comparing characters.
    steps = tuple([sys.intern(step) if type(step) is str else step for step in path.steps])
    return Ref(sys.intern(cast(str, path.root)), steps)


_NULL = Const(None)


def _compile_dynamic_path(text: str) -> Node:
    """Parse a path built at render time; anything malformed resolves to null."""
    stripped = text.strip()
    if not stripped:
        return Const("")
    try:
        return _path_node(parse_path(stripped))
    except (TemplateSyntax, jsonpath_fallback.QuerySyntaxError):
        return _NULL


def _error_message(text: str, exc: TemplateSyntax, where: tuple[Any, ...]) -> str:
    expression = text if exc.expression is None else exc.expression
    location = "" if not where else f" in {_format_location(where)}"
    return f"cannot parse {expression!r} at offset {exc.offset}{location}: {exc.detail}"


def _format_location(where: tuple[Any, ...]) -> str:
    """`$.a.list[1]`, with bracket notation for keys that are not plain names."""
    out = ["$"]
    for step in where:
        if type(step) is int:
            out.append(f"[{step}]")
        elif type(step) is str and step.isidentifier():
            out.append(f".{step}")
        else:
            out.append(f"[{step!r}]")
    return "".join(out)


def compile_template(value: Any) -> Template:
    """Compile a JSON template (dict, list, string or scalar) for repeated rendering.

    Args:
        value: any JSON value; strings anywhere inside may hold `${...}` expressions.

    Returns:
        The compiled `Template`.

    Raises:
        MappingError: an expression cannot be parsed; the message names the string, the
            character offset in it, the location inside `value` and the fix.
    """
    compiler = _Compiler()
    node = compiler.value(value, ())
    fields = {
        root: None if names is None else frozenset(names) for root, names in compiler.fields.items()
    }
    for root in compiler.roots:
        fields.setdefault(root, None)
    return Template(
        node, frozenset(compiler.roots), compiler.dynamic_roots, compiler.constant, fields
    )


def render(value: Any, ctx: Mapping[str, Any]) -> Any:
    """Compile and render once (no caching); see `compile_template` and `Template.render`.

    Raises:
        MappingError: an expression cannot be parsed.
    """
    return compile_template(value).render(ctx)
