"""ConnectWise's ``conditions=`` query language: building it (client) and reading it (simulator).

A condition compares record fields, addressed as ``/`` paths, with literals::

    (company/name like "Acme%" and closedFlag = false) or lastUpdated >= [2024-05-01T00:00:00Z]

Grammar accepted by ``parse`` (keywords and field names are case-insensitive)::

    expression := conjunction ("or" conjunction)*
    conjunction := unary ("and" unary)*
    unary      := "not" unary | "(" expression ")" | comparison
    comparison := path op value | path ["not"] ("contains" | "like") string
                | path ["not"] "in" "(" value ("," value)* ")"
    op         := "=" | "!=" | "<" | "<=" | ">" | ">="
    value      := "string" | 'string' | [datetime] | number | true | false | null

Strings escape quotes and backslashes with a backslash. ``like`` takes SQL wildcards (``%``,
``_``). A comparison with a missing (null) field is false, as in SQL, except ``= null``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# --------------------------------------------------------------------------- building


def quote(text: str) -> str:
    """A string literal: ``"text"`` with quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def when(moment: datetime) -> str:
    """A datetime literal in UTC to the second: ``[2024-05-01T14:00:00Z]``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return "[" + moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "]"


def all_of(*clauses: str | None) -> str:
    """Join the non-empty clauses with ``and``."""
    return " and ".join(f"({c})" if " or " in c.lower() else c for c in clauses if c)


# --------------------------------------------------------------------------- reading


class ConditionsError(ValueError):
    """A conditions string that does not parse."""


def parse_datetime(value: str) -> datetime:
    """An ISO 8601 timestamp as ConnectWise writes it (``Z`` or an offset; naive means UTC)."""
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def resolve(record: Mapping[str, Any], path: str) -> Any:
    """The value at ``a/b/c`` in a record, matching names case-insensitively.

    A top-level name the record lacks is looked up in its ``_info`` block, so ``lastUpdated``
    and ``_info/lastUpdated`` both address the change time.
    """
    segments = path.split("/")
    value: Any = record
    for index, segment in enumerate(segments):
        if not isinstance(value, Mapping):
            return None
        key = _find_key(value, segment)
        if key is None and index == 0 and isinstance(record.get("_info"), Mapping):
            value, key = record["_info"], _find_key(record["_info"], segment)
        if key is None:
            return None
        value = value[key]
    return value


def _find_key(mapping: Mapping[str, Any], name: str) -> str | None:
    if name in mapping:
        return name
    folded = name.casefold()
    return next((k for k in mapping if k.casefold() == folded), None)


class Condition:
    """A parsed condition; ``matches(record)`` tests one record, ``paths`` lists the fields."""

    def matches(self, record: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    @property
    def paths(self) -> list[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class Comparison(Condition):
    path: str
    op: str
    value: Any
    negate: bool = False

    def matches(self, record: Mapping[str, Any]) -> bool:
        field = resolve(record, self.path)
        if self.value is None and self.op in ("=", "!="):
            return (field is None) == (self.op == "=")
        if field is None:
            return False
        result = _OPERATORS[self.op](field, self.value)
        return not result if self.negate else result

    @property
    def paths(self) -> list[str]:
        return [self.path]


@dataclass(frozen=True)
class AllOf(Condition):
    parts: tuple[Condition, ...]

    def matches(self, record: Mapping[str, Any]) -> bool:
        return all(p.matches(record) for p in self.parts)

    @property
    def paths(self) -> list[str]:
        return [path for p in self.parts for path in p.paths]


@dataclass(frozen=True)
class AnyOf(Condition):
    parts: tuple[Condition, ...]

    def matches(self, record: Mapping[str, Any]) -> bool:
        return any(p.matches(record) for p in self.parts)

    @property
    def paths(self) -> list[str]:
        return [path for p in self.parts for path in p.paths]


@dataclass(frozen=True)
class Negation(Condition):
    part: Condition

    def matches(self, record: Mapping[str, Any]) -> bool:
        return not self.part.matches(record)

    @property
    def paths(self) -> list[str]:
        return self.part.paths


# Each operator gets the field value (not None) and the literal; the literal's type decides.
def _coerced(field: Any, literal: Any) -> Any:
    if isinstance(literal, bool):
        return field if isinstance(field, bool) else str(field).casefold() == "true"
    if isinstance(literal, datetime):
        return field if isinstance(field, datetime) else parse_datetime(str(field))
    if isinstance(literal, (int, float)):
        return float(field)
    return str(field).casefold()


def _literal(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(field: Any, literal: Any) -> bool:
        try:
            return compare(_coerced(field, literal), _literal(literal))
        except (TypeError, ValueError):
            return False

    return check


def _like(field: Any, pattern: Any) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, str(field), re.IGNORECASE | re.DOTALL) is not None


def _in(field: Any, options: Any) -> bool:
    return any(_OPERATORS["="](field, option) for option in options)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _ordered(lambda a, b: a == b),
    "!=": _ordered(lambda a, b: a != b),
    "<": _ordered(lambda a, b: a < b),
    "<=": _ordered(lambda a, b: a <= b),
    ">": _ordered(lambda a, b: a > b),
    ">=": _ordered(lambda a, b: a >= b),
    "contains": lambda field, text: str(text).casefold() in str(field).casefold(),
    "like": _like,
    "in": _in,
}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<punct>[(),])
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<datetime>\[[^\]]*\])
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<number>-?\d+(?:\.\d+)?(?![\w/]))
    | (?P<word>[A-Za-z_]\w*(?:/[A-Za-z_]\w*)*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str

    @property
    def keyword(self) -> str:
        return self.text.casefold() if self.kind == "word" else ""


def _tokens(text: str) -> list[_Token]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ConditionsError(f"unexpected character at position {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ConditionsError("the conditions end too early")
        self.index += 1
        return token

    def take_keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.keyword in words:
            self.index += 1
            return True
        return False

    def expect_punct(self, char: str) -> None:
        token = self.take()
        if token.text != char:
            raise ConditionsError(f"expected {char!r}, found {token.text!r}")

    def expression(self) -> Condition:
        parts = [self.conjunction()]
        while self.take_keyword("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def conjunction(self) -> Condition:
        parts = [self.unary()]
        while self.take_keyword("and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def unary(self) -> Condition:
        if self.take_keyword("not"):
            return Negation(self.unary())
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.expression()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        token = self.take()
        if token.kind != "word" or token.keyword in _KEYWORDS:
            raise ConditionsError(f"expected a field name, found {token.text!r}")
        path = token.text
        negate = self.take_keyword("not")
        if self.take_keyword("contains", "like"):
            op = self.tokens[self.index - 1].keyword
            value = self.value()
            if not isinstance(value, str):
                raise ConditionsError(f"{op} needs a string after {path}")
            return Comparison(path, op, value, negate)
        if self.take_keyword("in"):
            self.expect_punct("(")
            options = [self.value()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                options.append(self.value())
            self.expect_punct(")")
            return Comparison(path, "in", tuple(options), negate)
        if negate:
            raise ConditionsError(f"expected contains, like or in after {path} not")
        op_token = self.take()
        if op_token.kind != "op":
            raise ConditionsError(f"expected an operator after {path}, found {op_token.text!r}")
        op = "!=" if op_token.text == "<>" else op_token.text
        return Comparison(path, op, self.value())

    def value(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "datetime":
            try:
                return parse_datetime(token.text[1:-1])
            except ValueError:
                raise ConditionsError(f"{token.text} is not a datetime") from None
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.keyword in ("true", "false"):
            return token.keyword == "true"
        if token.keyword == "null":
            return None
        raise ConditionsError(f"expected a value, found {token.text!r}")


_KEYWORDS = frozenset({"and", "or", "not", "contains", "like", "in", "true", "false", "null"})


def parse(text: str) -> Condition:
    """Parse a conditions string; raise ``ConditionsError`` saying what is wrong."""
    parser = _Parser(text)
    if parser.peek() is None:
        raise ConditionsError("the conditions are empty")
    condition = parser.expression()
    if parser.peek() is not None:
        raise ConditionsError(f"unexpected {parser.peek().text!r} after a complete condition")  # type: ignore[union-attr]
    return condition


def unknown_fields(condition: Condition, known: Iterable[str]) -> list[str]:
    """The paths whose first name is not a field of the resource (``_info`` always is)."""
    names = {k.casefold() for k in known} | {"_info"}
    return [p for p in condition.paths if p.split("/")[0].casefold() not in names]
