"""Render a parsed search (core.search) as a SQL WHERE / ORDER BY with bound parameters.

Rules:
- Shared by SQLite and PostgreSQL: `dialect` switches placeholders (`?` vs `$1`) and
  pattern syntax. The SQL must select exactly the rows `core.search.matches()` accepts
  (the contract suite checks every operator on every backend).
- Values are always bound parameters, never spliced into the SQL text; column names come
  from core.search.FIELDS only (WorkflowRecord attribute = column name).
- Text comparison is case-sensitive and byte-ordered, like Python: SQLite's default BINARY
  collation does that; on PostgreSQL the renderer adds `COLLATE "C"` to text orderings.
- Wildcards (`*` in `=`/`!=` values, STARTS_WITH): SQLite uses GLOB (case-sensitive; LIKE is
  not), PostgreSQL uses LIKE with `\\` escapes. freeText lower-cases both sides; on SQLite
  the store registers `podium_lower` (Python's str.lower) so non-ASCII folds like Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.search import TIEBREAK, And, Cond, Field, Node, SortKey, Value

Dialect = Literal["sqlite", "postgres"]

# The freeText haystack, as in core.search.free_text_haystack.
_HAYSTACK = (
    "(workflow_id || ' ' || workflow_name || ' ' || COALESCE(correlation_id, '') "
    "|| ' ' || search_text)"
)


@dataclass(slots=True)
class _Render:
    dialect: Dialect
    first_param: int
    params: list[Value] = field(default_factory=list)

    def bind(self, value: Value) -> str:
        self.params.append(value)
        if self.dialect == "sqlite":
            return "?"
        return f"${self.first_param + len(self.params) - 1}"

    def pattern_match(self, col: str, pattern_parts: list[str], anchored_end: bool) -> str:
        """`col` matches literal parts joined by "any run"; anchored at the start."""
        if self.dialect == "sqlite":
            glob = "*".join(_glob_escape(p) for p in pattern_parts)
            return f"{col} GLOB {self.bind(glob if anchored_end else glob + '*')}"
        like = "%".join(_like_escape(p) for p in pattern_parts)
        return f"{col} LIKE {self.bind(like if anchored_end else like + '%')} ESCAPE '\\'"

    def null_test(self, f: Field, col: str) -> str:
        if f.name == "endTime":
            return f"({col} IS NULL OR {col} = 0)"
        if f.kind == "text":
            return f"({col} IS NULL OR {col} = '')"
        return f"{col} IS NULL"

    def equals(self, f: Field, col: str, value: Value) -> str:
        if f.kind == "text" and isinstance(value, str) and "*" in value:
            return self.pattern_match(col, value.split("*"), anchored_end=True)
        return f"{col} = {self.bind(value)}"

    def cond(self, node: Cond) -> str:
        f, op, values = node.field, node.op, node.values
        col = f.attr
        if op == "IS NULL":
            return self.null_test(f, col)
        if op == "IS NOT NULL":
            return f"NOT {self.null_test(f, col)}"
        if op == "!=":
            # Null rows match != (see core.search); NOT(...) of a NULL comparison is NULL.
            return f"({self.null_test(f, col)} OR NOT ({self.equals(f, col, values[0])}))"
        not_null = f"NOT {self.null_test(f, col)}"
        if op == "=":
            test = self.equals(f, col, values[0])
        elif op == "IN":
            test = f"{col} IN ({', '.join(self.bind(v) for v in values)})"
        elif op == "STARTS_WITH":
            test = self.pattern_match(col, [str(values[0])], anchored_end=False)
        elif op in (">", "<"):
            test = f"{col} {op} {self.bind(values[0])}"
        else:  # BETWEEN
            test = f"{col} BETWEEN {self.bind(values[0])} AND {self.bind(values[1])}"
        return f"({not_null} AND {test})"

    def node(self, node: Node) -> str:
        if isinstance(node, Cond):
            return self.cond(node)
        joiner = "AND" if isinstance(node, And) else "OR"
        return f"({self.node(node.left)} {joiner} {self.node(node.right)})"

    def free_text(self, terms: tuple[str, ...]) -> str:
        lower = "podium_lower" if self.dialect == "sqlite" else "lower"
        clauses = []
        for term in terms:
            like = "%".join(_like_escape(p) for p in term.split("*"))
            clauses.append(f"{lower}({_HAYSTACK}) LIKE {self.bind('%' + like + '%')} ESCAPE '\\'")
        return " AND ".join(clauses)


def _glob_escape(text: str) -> str:
    # GLOB has no escape character: a special character is matched by a one-char class.
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def render_where(
    node: Node | None,
    terms: tuple[str, ...],
    *,
    dialect: Dialect,
    first_param: int = 1,
) -> tuple[str, list[Value]]:
    """SQL for `WHERE <sql>` selecting rows that match `node` and every freeText term.

    Args:
        node: the parsed query (None = all rows).
        terms: parsed freeText terms (core.search.parse_free_text).
        dialect: "sqlite" (`?` placeholders) or "postgres" (`$n`).
        first_param: number of the first `$n` placeholder (postgres only), so the caller
            can put its own parameters before these.

    Returns:
        (sql, params); sql is "TRUE"-equivalent `1 = 1` when there is no filter.
    """
    render = _Render(dialect, first_param)
    parts = []
    if node is not None:
        parts.append(render.node(node))
    if terms:
        parts.append(render.free_text(terms))
    return (" AND ".join(parts) or "1 = 1"), render.params


def render_order_by(keys: tuple[SortKey, ...], *, dialect: Dialect) -> str:
    """SQL for `ORDER BY <sql>`: `keys`, then TIEBREAK; null first ascending, last descending."""
    parts = []
    for key in (*keys, TIEBREAK):
        f = key.field
        col = f.attr
        # Normalise "" and endTime 0 to NULL so they sort with the nulls, like core.search.
        expr = f"NULLIF({col}, 0)" if f.name == "endTime" else col
        if f.kind == "text":
            expr = f"NULLIF({col}, '')"
            if dialect == "postgres":
                expr += ' COLLATE "C"'
        if key.descending:
            parts.append(f"{expr} DESC NULLS LAST")
        else:
            parts.append(f"{expr} ASC NULLS FIRST")
    return ", ".join(parts)
