"""The GreenLake list query language: `filter` expressions, `sort` keys and `select` fields.

Grammar (keywords are case-insensitive; a field path uses `/` or `.` for nesting):

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := path ("eq"|"ne"|"gt"|"ge"|"lt"|"le") literal
                | path "in" "(" literal ("," literal)* ")"
    literal    := 'quoted string' ('' escapes a quote) | number | true | false | null
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from inventory_sync.simulator.dataset import JsonObject, parse_timestamp

Value = str | int | float | bool | None

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?)(?![\w.])
      | (?P<word>[A-Za-z_][\w]*(?:[/.][A-Za-z_][\w]*)*)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_KEYWORDS = _COMPARISONS | {"in", "and", "or", "not", "true", "false", "null"}


class FilterError(ValueError):
    """A query parameter does not parse; the message says what and where."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Comparison:
    """`path op value`; for `in`, value is a tuple of literals."""

    path: tuple[str, ...]
    op: str
    value: Value | tuple[Value, ...]


@dataclass(frozen=True)
class Junction:
    """`and` / `or` over two or more operands."""

    op: str
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Negation:
    """`not operand`."""

    operand: Expr


Expr = Comparison | Junction | Negation


@dataclass(frozen=True)
class _Token:
    kind: str  # string, number, word, keyword, punct, end
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise FilterError("filter", f"unexpected character at position {position}")
        kind = match.lastgroup
        value, start = match.group(kind), match.start(kind)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        tokens.append(_Token(kind, value, start))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, fields: Collection[str] | None) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.fields = fields

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self, kind: str, text: str | None = None) -> _Token:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            wanted = text or kind
            found = token.text or "end of filter"
            raise FilterError(
                "filter", f"expected {wanted} at position {token.position}, found {found!r}"
            )
        self.index += 1
        return token

    def accept(self, kind: str, text: str) -> bool:
        token = self.peek()
        if token.kind == kind and token.text == text:
            self.index += 1
            return True
        return False

    def parse(self) -> Expr:
        expr = self.junction("or")
        self.take("end")
        return expr

    def junction(self, op: str) -> Expr:
        operands = [self.junction("and") if op == "or" else self.unary()]
        while self.accept("keyword", op):
            operands.append(self.junction("and") if op == "or" else self.unary())
        return operands[0] if len(operands) == 1 else Junction(op, tuple(operands))

    def unary(self) -> Expr:
        if self.accept("keyword", "not"):
            return Negation(self.unary())
        if self.accept("punct", "("):
            expr = self.junction("or")
            self.take("punct", ")")
            return expr
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.take("word")
        path = tuple(re.split(r"[/.]", token.text))
        if self.fields is not None and path[0] not in self.fields:
            raise FilterError(
                "filter", f"unknown field {token.text!r} at position {token.position}"
            )
        op = self.peek()
        if op.kind != "keyword" or op.text not in _COMPARISONS | {"in"}:
            raise FilterError("filter", f"expected an operator at position {op.position}")
        self.index += 1
        if op.text != "in":
            return Comparison(path, op.text, self.literal())
        self.take("punct", "(")
        values = [self.literal()]
        while self.accept("punct", ","):
            values.append(self.literal())
        self.take("punct", ")")
        return Comparison(path, "in", tuple(values))

    def literal(self) -> Value:
        token = self.peek()
        self.index += 1
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        raise FilterError("filter", f"expected a value at position {token.position}")


def parse_filter(text: str, *, fields: Collection[str] | None = None) -> Expr:
    """Parse a filter; with `fields`, a path must start with one of them. Raises FilterError."""
    if not text.strip():
        raise FilterError("filter", "empty expression")
    return _Parser(text, fields).parse()


def matches(expr: Expr, item: JsonObject) -> bool:
    """Whether `item` satisfies `expr`."""
    if isinstance(expr, Negation):
        return not matches(expr.operand, item)
    if isinstance(expr, Junction):
        results = (matches(operand, item) for operand in expr.operands)
        return all(results) if expr.op == "and" else any(results)
    candidates = list(_resolve(item, expr.path)) or [None]
    if expr.op == "in":
        assert isinstance(expr.value, tuple)  # the parser builds a tuple for `in` only
        return any(_compare(c, v) == 0 for c in candidates for v in expr.value)
    assert not isinstance(expr.value, tuple)
    if expr.op == "ne":
        return all(_compare(c, expr.value) != 0 for c in candidates)
    wanted = {"eq": {0}, "gt": {1}, "ge": {0, 1}, "lt": {-1}, "le": {-1, 0}}[expr.op]
    return any(_compare(c, expr.value) in wanted for c in candidates)


def _resolve(value: Any, path: Sequence[str]) -> Iterator[Any]:
    # A list on the way fans out: `subscription/id eq 'x'` matches a device whose
    # subscription links include x.
    if isinstance(value, list):
        for element in value:
            yield from _resolve(element, path)
        return
    if not path:
        yield value
        return
    if isinstance(value, dict):
        yield from _resolve(value.get(path[0]), path[1:])


def _compare(left: Any, right: Value) -> int | None:
    """-1/0/1, or None when the two cannot be compared (a mismatch never matches)."""
    if left is None or right is None:
        return 0 if left is right else None
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(left, bool) and isinstance(right, bool):
            return (left > right) - (left < right)
        return None
    a: Any = left
    b: Any = right
    if isinstance(a, str) and isinstance(b, str):
        if _TIMESTAMP.match(a) and _TIMESTAMP.match(b):
            # '...51.480Z' vs '...51Z' must compare as instants, not as text.
            a, b = parse_timestamp(a), parse_timestamp(b)
    elif not (isinstance(a, int | float) and isinstance(b, int | float)):
        return None
    return int(a > b) - int(a < b)


def parse_sort(text: str, *, fields: Collection[str]) -> list[tuple[str, bool]]:
    """`"updatedAt desc, serialNumber"` → [(field, descending), ...]. Raises FilterError."""
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise FilterError("sort", f"cannot parse {part.strip()!r}")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise FilterError("sort", f"direction must be asc or desc, not {words[1]!r}")
        if words[0] not in fields:
            raise FilterError("sort", f"unknown field {words[0]!r}")
        keys.append((words[0], direction == "desc"))
    return keys


def sort_items(items: list[JsonObject], keys: Sequence[tuple[str, bool]]) -> list[JsonObject]:
    """`items` ordered by `keys`; ties keep their current order (nulls sort first)."""
    ordered = list(items)
    for field, descending in reversed(keys):
        ordered.sort(key=lambda item: _sort_key(item.get(field)), reverse=descending)
    return ordered


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, dict | list):
        return (2, json.dumps(value, sort_keys=True))
    if isinstance(value, bool | int | float):
        return (1, float(value))
    return (3, str(value))


def parse_select(text: str, *, fields: Collection[str]) -> list[str]:
    """`"id,serialNumber"` → ["id", "serialNumber"]. Raises FilterError on unknown fields."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise FilterError("select", "empty field name")
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise FilterError("select", f"unknown field(s) {', '.join(unknown)}")
    return names


def project(item: JsonObject, names: Sequence[str]) -> JsonObject:
    """Only the selected fields of `item`."""
    return {name: item.get(name) for name in names}


def compare_values(left: Value, right: Value) -> int | None:
    """-1/0/1 as a filter compares two literals (timestamps as instants), None if it cannot."""
    return _compare(left, right)
