"""Text -> ``ast.Node``: the lark grammar in ``grammar/proxy.lark``, ``let`` bindings inlined.

Names and arities are checked here (they are about the text); shapes and levels are the checker's job.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

import lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from proxylang.errors import ProxySyntaxError
from proxylang.lang.ast import Call, Input, Node, Num, Span, depth, size
from proxylang.lang.primitives import DEFAULT_EXPONENT, PRIMITIVES
from proxylang.stats.netstats import INPUTS

OPERATOR_NAMES = {p.infix: name for name, p in PRIMITIVES.items() if p.infix}
_TOKEN_TEXT = {"LPAR": "'('", "RPAR": "')'", "COMMA": "','", "NAME": "a name", "NUMBER": "a number",
               "COMPARE": "a comparison", "ADD_OP": "'+' or '-'", "MUL_OP": "'*' or '/'",
               "EQUAL": "'='", "LET": "'let'", "$END": "end of input"}


# Proxies nest a dozen levels at most; every later stage (checker, printer, canonical forms) walks the tree
# recursively, so a deeper text is refused here with a clean error instead of exhausting the stack there.
MAX_DEPTH = 100
# Every later stage also works on the tree with its let bindings written out, which a chain of bindings
# that each use the previous one twice makes exponentially larger than the text (30 lines: a billion
# nodes). Searched proxies have at most 32 nodes, hand-written ones a few dozen.
MAX_SIZE = 2000
# Lark reads about 100 KB of proxy text per second; a proxy is a few hundred characters
MAX_TEXT = 64 * 1024


def _text_depth(tree: lark.Tree) -> tuple[int, lark.Tree]:
    """The nesting depth of a parse tree and its deepest sub-tree, without recursion."""
    deepest, where = 0, tree
    stack = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest, where = level, node
        stack.extend((c, level + 1) for c in node.children if isinstance(c, lark.Tree))
    return deepest, where


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = (resources.files("proxylang.grammar") / "proxy.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _syntax_message(exc: UnexpectedInput) -> str:
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character {exc.char!r}"
    expected = sorted(_TOKEN_TEXT.get(t, t) for t in getattr(exc, "expected", ()) or ())
    hint = f"; expected {', '.join(expected)}" if expected else ""
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return f"unexpected end of input{hint}"
    return f"unexpected {exc.token!s:.20}{hint}".replace("\n", " ")


def parse(text: str, source: str = "<expr>") -> Node:
    """The expression of a proxy text (``let`` names replaced by their expressions)."""
    if len(text) > MAX_TEXT:
        raise ProxySyntaxError(f"{len(text)} characters; a proxy has at most {MAX_TEXT}", 1, 1, source)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        line, column = exc.line, exc.column
        if isinstance(exc, UnexpectedToken) and exc.token.type == "$END" or line is None or line < 0:
            lines = text.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        raise ProxySyntaxError(_syntax_message(exc), line, column, source) from None
    levels, where = _text_depth(tree)
    if levels > MAX_DEPTH:
        raise ProxySyntaxError(f"nested {levels} levels deep; at most {MAX_DEPTH} are supported",
                               where.meta.line, where.meta.column, source)
    node = _Builder(source).build(tree)
    levels, nodes = depth(node), size(node)
    if levels > MAX_DEPTH:  # let bindings inlined into one another
        raise ProxySyntaxError(f"nested {levels} levels deep once its let bindings are inlined; at most "
                               f"{MAX_DEPTH} are supported", 1, 1, source)
    if nodes > MAX_SIZE:
        raise ProxySyntaxError(f"{nodes} nodes once its let bindings are inlined; at most {MAX_SIZE} are "
                               "supported", 1, 1, source)
    return node


class _Builder:
    """Walks the parse tree in order, so a binding only sees the names bound before it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.names: dict[str, Node] = {}
        self.unused: dict[str, lark.Token] = {}

    def error(self, message: str, where: lark.Tree | lark.Token) -> ProxySyntaxError:
        line = where.line if isinstance(where, lark.Token) else where.meta.line
        column = where.column if isinstance(where, lark.Token) else where.meta.column
        return ProxySyntaxError(message, line, column, self.source)

    def build(self, tree: lark.Tree) -> Node:
        *bindings, body = tree.children
        for binding in bindings:
            name, value = binding.children
            if name in INPUTS or name in PRIMITIVES:
                raise self.error(f"cannot bind {str(name)!r}: it names an input or a primitive", name)
            if name in self.names:
                raise self.error(f"{str(name)!r} is already bound", name)
            self.names[str(name)] = self.expr(value)
            self.unused[str(name)] = name
        node = self.expr(body)
        if self.unused:  # never type-checked either, so it could hide any error
            name, token = next(iter(self.unused.items()))
            raise self.error(f"{name!r} is bound but never used", token)
        return node

    def expr(self, tree: lark.Tree | lark.Token) -> Node:
        span = Span(tree.meta.line, tree.meta.column) if isinstance(tree, lark.Tree) else None
        kind = tree.data if isinstance(tree, lark.Tree) else None
        if kind == "number":
            value = float(tree.children[0])
            if not math.isfinite(value):
                raise self.error(f"the number {tree.children[0]!s} is too large for a float", tree)
            if value == 0 and any(c in "123456789" for c in str(tree.children[0]).lower().split("e")[0]):
                raise self.error(f"the number {tree.children[0]!s} is too small for a float", tree)
            return Num(value, span=span)
        if kind == "name":
            return self.name(tree.children[0])
        if kind == "signed":
            sign, operand_tree = tree.children
            operand = self.expr(operand_tree)
            if sign == "+":
                return operand
            if isinstance(operand, Num):
                return Num(-operand.value, span=span)
            return Call("mul", (Num(-1.0, span=span), operand), span=span)
        if kind in ("infix", "compare"):
            left, op, right = tree.children
            return Call(OPERATOR_NAMES[str(op)], (self.expr(left), self.expr(right)), span=span)
        if kind == "call":
            return self.call(tree, span)
        raise self.error(f"unexpected construct {kind!r}", tree)  # grammar and builder disagree

    def name(self, token: lark.Token) -> Node:
        span = Span(token.line, token.column)
        if token in self.names:
            self.unused.pop(str(token), None)
            return self.names[str(token)]
        if token in INPUTS:
            return Input(str(token), span=span)
        if token in PRIMITIVES:
            raise self.error(f"{token!s} is a primitive; call it as {token!s}(...)", token)
        raise self.error(f"unknown name {token!s}; inputs are {', '.join(INPUTS)}", token)

    def call(self, tree: lark.Tree, span: Span) -> Node:
        name, *arg_trees = tree.children
        primitive = PRIMITIVES.get(str(name))
        if primitive is None:
            raise self.error(f"unknown primitive {name!s}", name)
        args = tuple(self.expr(a) for a in arg_trees)
        if primitive.literal_exponent:
            if len(args) == 1:
                args += (Num(DEFAULT_EXPONENT, span=span),)
            if len(args) == 2 and not isinstance(args[1], Num):
                raise self.error(f"the exponent of {name!s} must be a number", arg_trees[1])
        if len(args) != primitive.arity:
            raise self.error(f"{name!s} takes {primitive.arity} argument{'s' * (primitive.arity > 1)}, "
                             f"got {len(args)}", name)
        return Call(str(name), args, span=span)
