"""The segment rule language: parsed by a grammar into a small tree, never evaluated as code.

    purchases_90d >= 2 and last_nps <= 6 and channel = "app"
    trait.plan in ("pro", "business") and not responded
    (lifecycle = "at-risk" or rfm_recency <= 2) and trait.city != 'Leeds'

Fields are columns of the per-person feature table (`features.FEATURES`) or profile
traits (`trait.NAME`); values are numbers, "text" or 'text', true and false; `and`
binds tighter than `or`; keywords are reserved and case-insensitive. The grammar is
LALR(1) (lark), so parsing is linear and iterative; the tree is then bounded in size
and depth before anything walks it, so no input can exhaust the stack or run code.
Errors name the column and show it with a caret:

    rule: expected a value after '>=' at column 18: purchases_90d >= and last_nps <= 6
                                                                     ^
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from opencx.errors import InvalidInput

MAX_LENGTH = 2_000  # characters
MAX_DEPTH = 20  # nesting of parentheses, not, and, or
MAX_TERMS = 100  # comparisons in one rule
MAX_VALUES = 200  # values in one `in (...)` list
_MAX_NUMBER = 1e15  # beyond this a literal is a typo, and would overflow an int64

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negate
    | atom
?atom: field OP value -> compare
    | field _IN "(" values ")" -> member
    | field _NOT _IN "(" values ")" -> not_member
    | field -> truthy
    | "(" or_expr ")"
values: value ("," value)*
field: NAME | TRAIT
?value: STRING | NUMBER | TRUE | FALSE
OP: "==" | "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
_AND.2: /and\b/i
_OR.2: /or\b/i
_NOT.2: /not\b/i
_IN.2: /in\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
TRAIT.3: /trait\.[A-Za-z_][A-Za-z0-9_]*/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /"(?:[^"\\]|\\.)*"/ | /'(?:[^'\\]|\\.)*'/
NUMBER: /-?[0-9]+(\.[0-9]+)?/
%ignore /\s+/
"""

# How people read each token the parser may expect or meet.
_EXPECTED = (
    ({"OP", "_IN"}, "a comparison (=, !=, <, <=, >, >=, in, not in)"),
    ({"NAME", "TRAIT"}, "a field"),
    ({"STRING", "NUMBER", "TRUE", "FALSE"}, 'a value (number, "text", true, false)'),
    ({"_AND", "_OR"}, "'and', 'or'"),
    ({"_NOT"}, "'not'"),
    ({"LPAR"}, "'('"),
    ({"COMMA"}, "','"),
    ({"RPAR"}, "')'"),
    ({"$END"}, "the end of the rule"),
)
_OPS = {"==": "=", "<>": "!="}

Value = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Field:
    """A feature column, or a profile trait (`trait.NAME`); `column` is 1-based."""

    name: str
    trait: bool
    column: int

    @property
    def label(self) -> str:
        return f"trait.{self.name}" if self.trait else self.name


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: str  # = != < <= > >=
    value: Value
    column: int  # of the value


@dataclass(frozen=True, slots=True)
class Member:
    field: Field
    values: tuple[Value, ...]
    negated: bool
    column: int  # of the first value


@dataclass(frozen=True, slots=True)
class Truthy:
    field: Field


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Compare | Member | Truthy | Not | And | Or


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed rule: its text and its tree."""

    text: str
    root: Node

    def fields(self) -> list[Field]:
        """Every field the rule names, in the order written."""
        return [n.field for n in _walk(self.root) if isinstance(n, (Compare, Member, Truthy))]


def rule_error(text: str, column: int, message: str, **details: Any) -> InvalidInput:
    """`rule: MESSAGE at column N: TEXT` with a caret under column N on the next line."""
    head = f"rule: {message} at column {column}: "
    snippet, offset = _snippet(text, column - 1)
    return InvalidInput(
        f"{head}{snippet}\n{' ' * (len(head) + offset)}^",
        details={"column": column, **details},
    )


def parse_rule(text: str) -> Rule:
    """Parse a segment rule, or raise `InvalidInput` pointing at the first mistake.

    >>> parse_rule('purchases_90d >= 2 and trait.city = "Leeds"').fields()[1].label
    'trait.city'
    >>> try:
    ...     parse_rule("purchases_90d >= and last_nps <= 6")
    ... except InvalidInput as error:
    ...     print(error.message)
    rule: expected a value (number, "text", true, false) after '>=' at column 18: purchases_90d >= and last_nps <= 6
                                                                                                   ^
    """  # noqa: E501
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("rule is empty: write a condition such as purchases_90d >= 2")
    if len(text) > MAX_LENGTH:
        raise InvalidInput(
            f"rule is {len(text):,} characters long, over the limit of {MAX_LENGTH:,}"
        )
    _check_nesting(text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except LarkError as exc:  # never expected, but a rule must only ever fail as bad input
        raise InvalidInput(f"rule could not be read: {exc}") from None
    _check_size(text, tree)
    return Rule(text, _node(tree))


@functools.cache
def _parser() -> Lark:
    # The basic lexer reserves the keywords everywhere: `in = 3` is an error, not a field.
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True)


def _check_nesting(text: str) -> None:
    """Refuse parentheses nested deeper than MAX_DEPTH, before the parser sees them."""
    depth = 0
    try:
        for token in _parser().lex(text):
            if token.type == "LPAR":
                depth += 1
                if depth > MAX_DEPTH:
                    raise rule_error(
                        text, _column(token), f"parentheses nest more than {MAX_DEPTH} deep"
                    )
            elif token.type == "RPAR":
                depth -= 1
    except UnexpectedCharacters:
        return  # the parser reports it, with what it expected


def _check_size(text: str, tree: Tree[Token]) -> None:
    """Bound the tree's depth, its comparisons and its numbers, walking it without recursion."""
    terms = 0
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, Tree):
            if item.type == "NUMBER" and abs(float(item)) > _MAX_NUMBER:
                raise rule_error(text, _column(item), f"the number {item} is too large")
            continue
        if item.data in ("compare", "member", "not_member", "truthy"):
            terms += 1
            if terms > MAX_TERMS:
                raise rule_error(
                    text, item.meta.column, f"the rule has more than {MAX_TERMS} comparisons"
                )
        elif item.data == "values" and len(item.children) > MAX_VALUES:
            raise rule_error(
                text, item.meta.column, f"an 'in' list has more than {MAX_VALUES} values"
            )
        elif depth > MAX_DEPTH:
            raise rule_error(text, item.meta.column, f"the rule nests more than {MAX_DEPTH} deep")
        stack.extend((child, depth + 1) for child in item.children)


def _node(tree: Tree[Token]) -> Node:
    """The rule tree from lark's; depth is bounded by `_check_size`, so recursion is safe."""
    kind, children = str(tree.data), tree.children
    if kind == "or_expr":
        return Or(tuple(_node(c) for c in children))  # type: ignore[arg-type]
    if kind == "and_expr":
        return And(tuple(_node(c) for c in children))  # type: ignore[arg-type]
    if kind == "negate":
        return Not(_node(children[0]))  # type: ignore[arg-type]
    field = _field(children[0])  # type: ignore[arg-type]
    if kind == "truthy":
        return Truthy(field)
    if kind == "compare":
        op, value = children[1], children[2]
        assert isinstance(op, Token) and isinstance(value, Token)
        return Compare(field, _OPS.get(str(op), str(op)), _value(value), _column(value))
    values = children[1]
    assert isinstance(values, Tree)
    tokens = [v for v in values.children if isinstance(v, Token)]
    return Member(field, tuple(_value(v) for v in tokens), kind == "not_member", _column(tokens[0]))


def _field(tree: Tree[Token]) -> Field:
    token = tree.children[0]
    assert isinstance(token, Token)
    text = str(token)
    if token.type == "TRAIT":
        return Field(text.split(".", 1)[1], True, _column(token))
    return Field(text, False, _column(token))


def _value(token: Token) -> Value:
    text = str(token)
    if token.type == "STRING":
        return _unquote(text[1:-1])
    if token.type in ("TRUE", "FALSE"):
        return token.type == "TRUE"
    return float(text) if "." in text else int(text)


def _unquote(body: str) -> str:
    r"""A backslash keeps the next character as it is: \" is ", \\ is \."""
    out, chars = [], iter(body)
    for ch in chars:
        out.append(next(chars, "") if ch == "\\" else ch)
    return "".join(out)


def _column(token: Token) -> int:
    # Positions in the whole text, so a rule written over several lines still points right.
    return int(token.start_pos or 0) + 1


def _walk(root: Node) -> Iterator[Node]:
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (And, Or)):
            stack.extend(reversed(node.operands))
        elif isinstance(node, Not):
            stack.append(node.operand)


def _syntax_error(text: str, exc: UnexpectedInput) -> InvalidInput:
    if isinstance(exc, UnexpectedCharacters):
        position = int(exc.pos_in_stream or 0)
        char = text[position]
        if char in "\"'":
            return rule_error(text, position + 1, "this text has no closing quote")
        if char == "." and text[:position].endswith("trait"):
            return rule_error(text, position + 1, "a trait is written trait.NAME")
        return rule_error(text, position + 1, f"unexpected character {char!r}")
    assert isinstance(exc, UnexpectedToken)
    at_end = exc.token.type == "$END"
    position = len(text.rstrip()) if at_end else int(exc.token.start_pos or 0)
    previous, open_parens = _before(text, position)
    expected = set(exc.expected)
    if open_parens == 0:  # LALR states are shared: ')' and ',' are offered with none open
        expected -= {"RPAR", "COMMA"}
    after = f" after {previous!r}" if previous else ""
    return rule_error(
        text,
        position + 1,
        f"expected {_describe_expected(expected)}{after}",
        expected=sorted(expected),
        found=None if at_end else str(exc.token),
    )


def _before(text: str, position: int) -> tuple[str | None, int]:
    """The token just before `position` and how many parentheses are open there."""
    previous, depth = None, 0
    try:
        for token in _parser().lex(text):
            if int(token.start_pos or 0) >= position:
                break
            previous = str(token)
            depth += {"LPAR": 1, "RPAR": -1}.get(token.type, 0)
    except UnexpectedCharacters:
        pass
    return previous, depth


def _describe_expected(expected: set[str]) -> str:
    parts = [text for names, text in _EXPECTED if names & expected]
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _snippet(text: str, position: int, width: int = 70) -> tuple[str, int]:
    """One line of the rule around `position` (newlines shown as spaces) and its offset."""
    flat = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    if len(flat) <= width:
        return flat, position
    start = max(0, min(position - width // 2, len(flat) - width))
    piece = flat[start : start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(flat) else ""
    return prefix + piece + suffix, position - start + len(prefix)
