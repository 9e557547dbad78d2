"""Parsing of `${...}` template strings and of the paths inside them (compile time only).

Rules: this module turns text into plain data (literal strings, `Expr` trees, `Path`
records) and never evaluates anything; `hotpath.mapping_py` turns that data into render
nodes. It is imported by both twins (it is not compiled: nothing here runs per render,
except `parse_path` for nested expressions, whose results the render nodes cache).
Syntax problems raise `TemplateSyntax` with an offset into the scanned string; the caller
adds the location inside the template and raises `core.errors.MappingError`.

Scanning rules (Conductor's current `ParametersUtils` behaviour, see docs/compatibility.md):
- `${` opens an expression, the matching `}` closes it; `${` inside an expression opens a
  nested one (resolved first, as a string). Braces are counted without regard to quotes.
- `$${` is an escape: the first `$` is dropped and the whole braced text (nested braces
  included) is emitted literally; an unterminated escape is emitted literally too.
- A `}` outside any expression is ordinary text. An unterminated `${` is an error.

Path rules (a subset of JSONPath taken by the fast path, everything else by the library):
- An optional leading `$.` (or `$` before a bracket); a root name; then `.name`,
  `['quoted key']`, `["quoted key"]` and `[integer]` (negative counts from the end).
- `..`, `*`, filters `[?...]`, slices `[a:b]`, unions `[a,b]` and function calls
  `name()` need the full JSONPath library (`Path.steps is None`).
- Whitespace inside a dot name, a dangling `.`, empty or unquoted non-integer brackets and
  unterminated brackets or quotes are errors, with a hint at the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# An index beyond this can never address a real list element; clamping keeps the value a
# machine-size integer for the compiled twin (a huge index still resolves to null).
_MAX_INDEX = 2**62
# Characters that make a dot name a JSONPath feature only the library understands.
_LIBRARY_NAME_CHARS = frozenset("*()?@")
# A dot name made only of characters that need no special handling.
_PLAIN_NAME = re.compile(r"""[^.\[\]\s'",*()?@]+(?=[.\[]|$)""")
# Characters that can never appear in a dot name.
_BAD_NAME_CHARS = {
    "]": "unexpected ']' without a matching '['",
    "'": "quoted names need bracket notation: ['...']",
    '"': 'quoted names need bracket notation: ["..."]',
    ",": "unexpected ',' outside brackets",
}


class TemplateSyntax(Exception):
    """A malformed template string or path.

    Attributes:
        offset: index of the problem in the scanned string (or path text).
        detail: what is wrong and how to fix it.
        expression: the `${...}` text at fault (None: the caller knows it).
    """

    def __init__(self, offset: int, detail: str, expression: str | None = None) -> None:
        super().__init__(f"{detail} (offset {offset})")
        self.offset = offset
        self.detail = detail
        self.expression = expression


@dataclass(frozen=True, slots=True)
class Expr:
    """One `${...}` expression: source span and body parts (text and nested expressions)."""

    start: int  # index of the `$` of `${` in the scanned string
    end: int  # index just after the closing `}`
    parts: tuple[str | Expr, ...]

    @property
    def is_nested(self) -> bool:
        """True if the body contains an inner expression."""
        return any(type(part) is Expr for part in self.parts)


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed path.

    Attributes:
        root: the context root name, or None if it is known only at render time.
        steps: dict keys (str) and list indexes (int) after the root, or None if the
            path needs the JSONPath library.
        library_text: the complete JSONPath for the library (when `steps` is None).
    """

    root: str | None
    steps: tuple[str | int, ...] | None
    library_text: str | None = None


def scan(text: str) -> list[str | Expr]:
    """Split a template string into literal text and expressions.

    Args:
        text: the template string.

    Returns:
        Literal strings (escapes already applied, adjacent text merged) and `Expr` trees.

    Raises:
        TemplateSyntax: an unterminated `${`.
    """
    parts, _ = _scan_parts(text, 0, nested=False)
    return parts


def _scan_parts(text: str, i: int, *, nested: bool) -> tuple[list[str | Expr], int]:
    # Returns the parts and the index of the closing '}' (nested) or len(text) (top level).
    parts: list[str | Expr] = []
    literal: list[str] = []
    n = len(text)
    while i < n:
        # Jump to the next character that can matter.
        nxt = _next_special(text, i, nested)
        if nxt < 0:
            literal.append(text[i:])
            i = n
            break
        if nxt > i:
            literal.append(text[i:nxt])
            i = nxt
        if text[i] == "}":  # only reported when nested: closes this expression
            _flush(parts, literal)
            return parts, i
        if text.startswith("$${", i):
            close = _matching_close(text, i + 3)
            end = n if close < 0 else close + 1
            literal.append(text[i + 1 : end])
            i = end
            continue
        if text.startswith("${", i):
            _flush(parts, literal)
            body, close = _scan_parts(text, i + 2, nested=True)
            if close >= n:
                raise TemplateSyntax(i, "unterminated '${': add the closing '}'", text[i:])
            parts.append(Expr(i, close + 1, tuple(body)))
            i = close + 1
            continue
        literal.append("$")
        i += 1
    _flush(parts, literal)
    return parts, n


def _next_special(text: str, i: int, nested: bool) -> int:
    dollar = text.find("$", i)
    if not nested:
        return dollar
    brace = text.find("}", i)
    if dollar < 0 or (0 <= brace < dollar):
        return brace
    return dollar


def _flush(parts: list[str | Expr], literal: list[str]) -> None:
    if literal:
        text = "".join(literal)
        literal.clear()
        if parts and type(parts[-1]) is str:
            parts[-1] = parts[-1] + text
        else:
            parts.append(text)


def _matching_close(text: str, i: int) -> int:
    """Index of the `}` closing a brace opened just before `i`, or -1."""
    depth = 1
    n = len(text)
    while i < n:
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def parse_path(text: str) -> Path:
    """Parse the (already stripped, non-empty) body of an expression.

    Args:
        text: e.g. `workflow.input.x`, `$.t1.output['a b'][0]`, `t.output..status`.

    Returns:
        The `Path`; `steps` is None when only the JSONPath library can evaluate it.

    Raises:
        TemplateSyntax: malformed path; `offset` indexes into `text`.
    """
    n = len(text)
    i = 0
    if text[0] == "$":
        if n == 1 or text.startswith("$..", 0):
            return _library(text, None, 0)
        if text[1] == ".":
            i = 2
        elif text[1] == "[":
            i = 1
    root: str | None = None
    steps: list[str | int] = []
    root_end = i
    while i < n:
        c = text[i]
        key: str | int | None
        if c == "[":
            key, i = _parse_bracket(text, i)
        elif c == "." and root is not None:
            if i + 1 >= n:
                raise TemplateSyntax(i, "a path must not end with '.'")
            if text[i + 1] == ".":
                return _library(text, root, root_end)
            if text[i + 1] == "[":
                i += 1  # `a.['b']` is accepted by JSONPath implementations
                continue
            key, i = _parse_name(text, i + 1)
        elif root is None and not steps:
            key, i = _parse_name(text, i)
        else:
            raise TemplateSyntax(i, "expected '.' or '[' after ']'")
        if key is None:
            return _library(text, root, root_end)
        if root is None:
            if type(key) is not str:
                return _library(text, None, 0)
            root = key
            root_end = i
        else:
            steps.append(key)
    if root is None:  # only `$.` reaches this
        raise TemplateSyntax(n, "expected a name after '$.'")
    return Path(root, tuple(steps))


def _library(text: str, root: str | None, root_end: int) -> Path:
    if root is None:
        full = text if text.startswith("$") else "$." + text
    else:
        # Quote the root so names the library's dot notation rejects (`task-1`, `1st`) work.
        full = "$[" + json.dumps(root) + "]" + text[root_end:]
    return Path(root, None, full)


def _parse_name(text: str, i: int) -> tuple[str | None, int]:
    # A dot name runs to the next '.' or '['. None means "the library must handle it".
    match = _PLAIN_NAME.match(text, i)
    if match is not None:  # the common case: no character needs a closer look
        return match.group(), match.end()
    start = i
    n = len(text)
    needs_library = False
    while i < n:
        c = text[i]
        if c == "." or c == "[":
            break
        if c.isspace():
            raise TemplateSyntax(
                i, f"whitespace in the name {text[start:i]!r}: use bracket notation ['...']"
            )
        bad = _BAD_NAME_CHARS.get(c)
        if bad is not None:
            raise TemplateSyntax(i, bad)
        if c in _LIBRARY_NAME_CHARS:
            needs_library = True
            if c == "(":  # a function call: its arguments may contain anything but ')'
                close = text.find(")", i)
                if close < 0:
                    raise TemplateSyntax(i, "unterminated '(': add the closing ')'")
                i = close
        i += 1
    if i == start:
        raise TemplateSyntax(i, "expected a name")
    return (None if needs_library else text[start:i]), i


def _parse_bracket(text: str, i: int) -> tuple[str | int | None, int]:
    # `text[i]` is '['. Returns (key, index after ']'); key None = library selector.
    n = len(text)
    j = _skip_spaces(text, i + 1)
    if j >= n:
        raise TemplateSyntax(i, "unterminated '[': add the closing ']'")
    c = text[j]
    if c == "'" or c == '"':
        key, j = _parse_quoted(text, j)
        j = _skip_spaces(text, j)
        if j < n and text[j] == "]":
            return key, j + 1
        if j < n and text[j] == ",":
            return None, _library_bracket_end(text, i)
        raise TemplateSyntax(j, "expected ']' after the quoted key")
    if c == "]":
        raise TemplateSyntax(i, "empty brackets '[]': use an integer index or a quoted key")
    if c == "-" or c.isdigit():
        k = j + 1 if c == "-" else j
        while k < n and text[k].isdigit():
            k += 1
        digits = text[j:k]
        end = _skip_spaces(text, k)
        if digits != "-" and end < n and text[end] == "]":
            index = max(-_MAX_INDEX, min(_MAX_INDEX, int(digits)))
            return index, end + 1
        if end < n and text[end] in ":,":
            return None, _library_bracket_end(text, i)
        if end >= n:
            raise TemplateSyntax(i, "unterminated '[': add the closing ']'")
        raise TemplateSyntax(end, "expected ']' after the index")
    if c in "*?:":
        return None, _library_bracket_end(text, i)
    raise TemplateSyntax(
        j, "expected an integer index or a quoted key after '[' (e.g. [0] or ['name'])"
    )


def _library_bracket_end(text: str, i: int) -> int:
    # The library parses the selector itself; only make sure the bracket is closed so a
    # typo gets our clear message. Quoted ']' inside filters is handled by the library.
    close = text.find("]", i)
    if close < 0:
        raise TemplateSyntax(i, "unterminated '[': add the closing ']'")
    return len(text)  # the library takes the rest of the path


def _parse_quoted(text: str, j: int) -> tuple[str, int]:
    quote = text[j]
    out: list[str] = []
    k = j + 1
    n = len(text)
    while k < n:
        c = text[k]
        if c == "\\" and k + 1 < n:
            out.append(text[k + 1])
            k += 2
            continue
        if c == quote:
            return "".join(out), k + 1
        out.append(c)
        k += 1
    raise TemplateSyntax(j, f"unterminated quoted key: add the closing quote ({quote})")


def _skip_spaces(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    return i
