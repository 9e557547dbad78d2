"""Conductor's workflow search language: parse `query`, `sort` and `freeText`, evaluate rows.

Rules:
- Pure: no IO, no clock. Every backend filters with the same AST, either by calling
  `matches()` on rows (memory, Redis) or by rendering it to SQL (server/stores/sql_search.py),
  and both must agree row for row (the contract suite checks this on every backend).
- Grammar (Conductor's Elasticsearch parser, spec 1.2):
      expr  := term ((AND | OR) expr)?          -- right-associative, no precedence,
      term  := '(' expr ')' | cond              -- exactly like Conductor: `a AND b OR c`
      cond  := field op value                   -- means `a AND (b OR c)`
  ops: = != > < IN (v, ...) BETWEEN v AND v  IS NULL  IS NOT NULL  STARTS_WITH v.
  Values: 'single' or "double" quoted (backslash escapes the next character), numbers, or
  bare words (`status = FAILED`). Keywords are case-insensitive.
- Fields use Conductor's names and are typed: numeric fields take integers (epoch ms),
  text fields take strings. `*` in an `=`/`!=` text value is a wildcard (any run of
  characters), as in Elasticsearch's query_string.
- Null: a text field is null when None or ""; `endTime` is null when 0. A null value never
  matches `=`, `>`, `<`, IN, BETWEEN or STARTS_WITH, and always matches `!=` (Elasticsearch's
  `NOT field:value` also matches documents without the field).
- Malformed input raises core.errors.BadRequest naming the position and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from core.errors import BadRequest
from core.store import WorkflowRecord

Kind = Literal["text", "int"]


@dataclass(frozen=True, slots=True)
class Field:
    """A searchable field: its Conductor name, the WorkflowRecord attribute and its type."""

    name: str
    attr: str
    kind: Kind


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("workflowType", "workflow_name", "text"),
        Field("workflowId", "workflow_id", "text"),
        Field("correlationId", "correlation_id", "text"),
        Field("status", "status", "text"),
        Field("parentWorkflowId", "parent_workflow_id", "text"),
        Field("startTime", "create_time", "int"),
        Field("updateTime", "update_time", "int"),
        Field("endTime", "end_time", "int"),
        Field("version", "workflow_version", "int"),
    )
}
# Case-insensitive lookup (Conductor users write `workflowtype` and `WorkflowType` too).
_FIELDS_CI = {name.lower(): f for name, f in FIELDS.items()}

Op = Literal["=", "!=", ">", "<", "IN", "BETWEEN", "IS NULL", "IS NOT NULL", "STARTS_WITH"]
Value = str | int


@dataclass(frozen=True, slots=True)
class Cond:
    """`field op values`: one value for = != > < STARTS_WITH, N for IN, 2 for BETWEEN."""

    field: Field
    op: Op
    values: tuple[Value, ...] = ()


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


Node = Cond | And | Or


@dataclass(frozen=True, slots=True)
class SortKey:
    field: Field
    descending: bool


# Default order when `sort` is empty: newest first; workflowId always breaks ties so that
# paging is stable across requests.
DEFAULT_SORT = (SortKey(FIELDS["startTime"], True),)
TIEBREAK = SortKey(FIELDS["workflowId"], False)

# ---------------------------------------------------------------------------- tokenizer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op>!=|<>|=|>|<)
  | (?P<punct>[(),])
  | (?P<quoted>['"])
  | (?P<word>[^\s()',"=!<>]+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "op" | "punct" | "str" | "word" | "end"
    text: str
    pos: int  # 0-based offset in the query


def _describe(tok: _Tok) -> str:
    return "the end of the query" if tok.kind == "end" else repr(tok.text)


def _fail(tok: _Tok, expected: str) -> BadRequest:
    return BadRequest(f"query: expected {expected} at position {tok.pos}, found {_describe(tok)}")


def _read_quoted(query: str, start: int) -> tuple[str, int]:
    quote = query[start]
    out: list[str] = []
    i = start + 1
    while i < len(query):
        c = query[i]
        if c == "\\" and i + 1 < len(query):
            out.append(query[i + 1])
            i += 2
            continue
        if c == quote:
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise BadRequest(
        f"query: string opened with {quote} at position {start} is never closed: "
        f"add a closing {quote}"
    )


def _tokenize(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(query):
        m = _TOKEN_RE.match(query, i)
        if m is None:  # pragma: no cover - the word class accepts every other character
            raise BadRequest(f"query: unexpected character {query[i]!r} at position {i}")
        kind = m.lastgroup or ""
        if kind == "quoted":
            text, end = _read_quoted(query, i)
            toks.append(_Tok("str", text, i))
            i = end
            continue
        if kind == "op" and m.group() == "<>":
            toks.append(_Tok("op", "!=", i))
        elif kind != "ws":
            toks.append(_Tok(kind, m.group(), i))
        i = m.end()
    toks.append(_Tok("end", "", len(query)))
    return toks


# ---------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, query: str) -> None:
        self.toks = _tokenize(query)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok.kind == "word" and tok.text.upper() in words:
            self.i += 1
            return tok.text.upper()
        return None

    def expr(self) -> Node:
        left = self.term()
        op = self.keyword("AND", "OR")
        if op is None:
            return left
        right = self.expr()
        return And(left, right) if op == "AND" else Or(left, right)

    def term(self) -> Node:
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            self.next()
            node = self.expr()
            close = self.next()
            if close.kind != "punct" or close.text != ")":
                raise _fail(close, "')' or AND/OR")
            return node
        return self.cond()

    def cond(self) -> Node:
        tok = self.next()
        if tok.kind != "word":
            raise _fail(tok, "a field name or '('")
        field = _FIELDS_CI.get(tok.text.lower())
        if field is None:
            known = ", ".join(FIELDS)
            raise BadRequest(
                f"query: unknown field {tok.text!r} at position {tok.pos}: use one of {known}"
            )
        op_tok = self.next()
        if op_tok.kind == "op":
            return Cond(field, op_tok.text, (self.value(field),))  # type: ignore[arg-type]
        word = op_tok.text.upper() if op_tok.kind == "word" else ""
        if word == "IN":
            return Cond(field, "IN", self.value_list(field))
        if word == "BETWEEN":
            low = self.value(field)
            if self.keyword("AND") is None:
                raise _fail(self.peek(), "AND between the two BETWEEN bounds")
            return Cond(field, "BETWEEN", (low, self.value(field)))
        if word == "STARTS_WITH":
            prefix = self.value(field)
            if field.kind != "text":
                raise BadRequest(
                    f"query: STARTS_WITH at position {op_tok.pos} needs a text field; "
                    f"{field.name} is numeric: use > and <"
                )
            return Cond(field, "STARTS_WITH", (prefix,))
        if word == "IS":
            negate = self.keyword("NOT") is not None
            if self.keyword("NULL") is None:
                raise _fail(self.peek(), "NULL or NOT NULL after IS")
            return Cond(field, "IS NOT NULL" if negate else "IS NULL")
        raise _fail(op_tok, "an operator (=, !=, >, <, IN, BETWEEN, IS, STARTS_WITH)")

    def value_list(self, field: Field) -> tuple[Value, ...]:
        open_tok = self.next()
        if open_tok.kind != "punct" or open_tok.text != "(":
            raise _fail(open_tok, "'(' to open the IN list")
        values = [self.value(field)]
        while True:
            tok = self.next()
            if tok.kind == "punct" and tok.text == ")":
                return tuple(values)
            if tok.kind != "punct" or tok.text != ",":
                raise _fail(tok, "',' or ')' in the IN list")
            values.append(self.value(field))

    def value(self, field: Field) -> Value:
        tok = self.next()
        if tok.kind not in ("str", "word"):
            raise _fail(tok, f"a value for {field.name}")
        if field.kind == "text":
            return tok.text
        try:
            return int(tok.text)
        except ValueError:
            raise BadRequest(
                f"query: {field.name} at position {tok.pos} takes an integer "
                f"(epoch milliseconds for times), got {tok.text!r}"
            ) from None


def parse_query(query: str) -> Node | None:
    """Parse a `query` string into an AST; an empty or blank query gives None (match all).

    Raises:
        BadRequest: the query is malformed; the message names the position and what was
            expected there.
    """
    if not query or not query.strip():
        return None
    parser = _Parser(query)
    node = parser.expr()
    tail = parser.peek()
    if tail.kind != "end":
        raise _fail(tail, "AND, OR or the end of the query")
    return node


def parse_sort(sort: str) -> tuple[SortKey, ...]:
    """Parse `field:ASC|field2:DESC` (order defaults to ASC); empty gives DEFAULT_SORT.

    The tiebreaker (workflowId ASC) is not included; callers append TIEBREAK.

    Raises:
        BadRequest: unknown field or order.
    """
    if not sort or not sort.strip():
        return DEFAULT_SORT
    keys: list[SortKey] = []
    for part in sort.split("|"):
        name, _, order = part.strip().partition(":")
        field = _FIELDS_CI.get(name.strip().lower())
        if field is None:
            known = ", ".join(FIELDS)
            raise BadRequest(f"sort: unknown field {name.strip()!r}: use one of {known}")
        order = order.strip().upper() or "ASC"
        if order not in ("ASC", "DESC"):
            raise BadRequest(f"sort: order for {field.name} must be ASC or DESC, got {order!r}")
        keys.append(SortKey(field, order == "DESC"))
    return tuple(keys)


def parse_free_text(free_text: str) -> tuple[str, ...]:
    """Split `freeText` into lower-cased terms; `*` (or empty) gives () = match all.

    Each term must occur (case-insensitively; `*` inside a term matches any run of
    characters) in the row's free-text haystack: workflowId, workflowType, correlationId
    and `search_text`.
    """
    terms: list[str] = []
    for raw in free_text.split():
        term = raw.strip("'\"").lower()
        if term.strip("*"):
            terms.append(term)
    return tuple(terms)


# ---------------------------------------------------------------------------- evaluation


def field_value(row: WorkflowRecord, field: Field) -> Value | None:
    """The row's value for `field`, with null normalised to None (see module rules)."""
    value: Value | None = getattr(row, field.attr)
    if value == "" or (field.name == "endTime" and value == 0):
        return None
    return value


def free_text_haystack(row: WorkflowRecord) -> str:
    """The lower-cased text freeText terms are matched in."""
    return " ".join(
        (row.workflow_id, row.workflow_name, row.correlation_id or "", row.search_text)
    ).lower()


_pattern_cache: dict[str, re.Pattern[str]] = {}


def _wildcard(pattern: str) -> re.Pattern[str]:
    compiled = _pattern_cache.get(pattern)
    if compiled is None:
        if len(_pattern_cache) > 1024:
            _pattern_cache.clear()
        compiled = re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.DOTALL)
        _pattern_cache[pattern] = compiled
    return compiled


def _equals(field: Field, actual: Value, expected: Value) -> bool:
    if field.kind == "text" and isinstance(expected, str) and "*" in expected:
        return _wildcard(expected).fullmatch(str(actual)) is not None
    return actual == expected


def _cond(node: Cond, row: WorkflowRecord) -> bool:
    actual = field_value(row, node.field)
    op = node.op
    if op == "IS NULL":
        return actual is None
    if op == "IS NOT NULL":
        return actual is not None
    if op == "!=":
        return actual is None or not _equals(node.field, actual, node.values[0])
    if actual is None:
        return False
    if op == "=":
        return _equals(node.field, actual, node.values[0])
    if op == "IN":
        return actual in node.values
    if op == "STARTS_WITH":
        return str(actual).startswith(str(node.values[0]))
    # Ordering comparisons: the parser typed both sides alike (int with int, str with str).
    if op == ">":
        return actual > node.values[0]  # type: ignore[operator]
    if op == "<":
        return actual < node.values[0]  # type: ignore[operator]
    low, high = node.values  # BETWEEN, inclusive like Elasticsearch's range from/to
    return low <= actual <= high  # type: ignore[operator]


def matches(node: Node | None, row: WorkflowRecord) -> bool:
    """Whether `row` satisfies the parsed query (`None` matches everything)."""
    if node is None:
        return True
    if isinstance(node, Cond):
        return _cond(node, row)
    if isinstance(node, And):
        return matches(node.left, row) and matches(node.right, row)
    return matches(node.left, row) or matches(node.right, row)


def free_text_matches(terms: tuple[str, ...], row: WorkflowRecord) -> bool:
    """Whether every freeText term occurs in the row's haystack."""
    if not terms:
        return True
    haystack = free_text_haystack(row)
    return all(_wildcard(t).search(haystack) is not None for t in terms)


def sort_rows(rows: list[WorkflowRecord], keys: tuple[SortKey, ...]) -> list[WorkflowRecord]:
    """Sort by `keys` then TIEBREAK; null sorts first ascending and last descending."""
    ordered = list(rows)
    # Stable sorts applied from the least significant key to the most significant.
    for key in reversed((*keys, TIEBREAK)):
        ordered.sort(key=_null_first(key.field), reverse=key.descending)
    return ordered


def _null_first(field: Field) -> Callable[[WorkflowRecord], tuple[bool, Value]]:
    def sort_key(row: WorkflowRecord) -> tuple[bool, Value]:
        value = field_value(row, field)
        return (value is not None, value if value is not None else 0)

    return sort_key
