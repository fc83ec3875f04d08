import random
import time

import pytest

from proxylang.errors import ProxylangError, ProxySyntaxError
from proxylang.lang.ast import Call, Input, Num, depth, size
from proxylang.lang.parse import parse


def test_function_form_and_infix_precedence():
    assert parse("sum(lt(softmax(W), relu(G)))") == Call("sum", (Call("lt", (
        Call("softmax", (Input("W"),)), Call("relu", (Input("G"),)))),))
    e = parse("sum(W + G * A) < 2")
    product = Call("mul", (Input("G"), Input("A")))
    assert e.op == "lt" and e.args[0].args[0] == Call("add", (Input("W"), product))


def test_unary_minus_literals_and_default_exponent():
    assert parse("-2") == Num(-2.0)
    assert parse("-W") == Call("mul", (Num(-1.0), Input("W")))
    assert parse("pow(W)") == parse("pow(W, 2)")


def test_let_bindings_are_inlined_and_comments_ignored():
    text = "# nwot\nlet c = gt(R, 0)  # codes\nslogdet(layersum(gram(c) + gram(1 - c)))\n"
    c = Call("gt", (Input("R"), Num(0.0)))
    flipped = Call("sub", (Num(1.0), c))
    assert parse(text).args[0].args[0].args == (Call("gram", (c,)), Call("gram", (flipped,)))


@pytest.mark.parametrize("text, line, column", [
    ("sum(W", 1, 6), ("sum(W))", 1, 7), ("foo(W)", 1, 1), ("x + W", 1, 1), ("sum(W, G)", 1, 1),
    ("let c = W\nlet c = G\nsum(c)", 2, 5), ("sum(W)\nsum(G)", 2, 1), ("pow(W, G)", 1, 8),
])
def test_syntax_errors_are_located(text, line, column):
    with pytest.raises(ProxySyntaxError) as info:
        parse(text, source="f.px")
    assert (info.value.line, info.value.column) == (line, column)
    assert str(info.value).startswith(f"f.px:{line}:{column}: ") and "\n" not in str(info.value)


def test_random_strings_raise_only_clean_errors():
    rng = random.Random(0)
    alphabet = list("WGAR()+-*/<>=,.#0123456789 \n") + ["sum", "let ", "gram", "pow", "slogdet", "x", "=="]
    for _ in range(10_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        try:
            parse(text)
        except ProxylangError as exc:
            assert "\n" not in str(exc)


@pytest.mark.parametrize("text, says", [
    ("abs(" * 1000 + "W" + ")" * 1000, "nested 1002 levels deep; at most 100"),
    ("+".join(["W"] * 1000), "nested 1001 levels deep; at most 100"),
    ("".join(f"let a{i} = {'W' if i == 0 else f'abs(a{i - 1})'}\n" for i in range(150)) + "sum(a149)",
     "once its let bindings are inlined"),
])
def test_nesting_past_the_limit_is_a_syntax_error_not_a_crash(text, says):
    with pytest.raises(ProxySyntaxError, match=says):
        parse(text)
    assert str(depth(parse("abs(" * 98 + "W" + ")" * 98))) == "99"  # just under the limit still parses


def test_a_number_too_large_for_a_float_is_a_syntax_error():
    with pytest.raises(ProxySyntaxError, match=r"<expr>:1:9: the number 1e400 is too large for a float"):
        parse("sum(W * 1e400)")


def _doubling_chain(lines: int) -> str:
    """``let a1 = W + W``, ``let a2 = a1 + a1``, ...: text linear in ``lines``, tree 2**lines nodes."""
    chain = ["let a1 = W + W"] + [f"let a{i} = a{i - 1} + a{i - 1}" for i in range(2, lines + 1)]
    return "\n".join([*chain, f"sum(a{lines})"])


def test_let_chains_that_double_the_tree_are_refused_in_linear_time():
    assert size(parse(_doubling_chain(9))) == 2**10  # sum over a9 = 2**10 - 1 nodes: under the limit
    start = time.perf_counter()
    with pytest.raises(ProxySyntaxError, match=r"<expr>:1:1: 2305843009213693952 nodes once its let "
                                               r"bindings are inlined; at most 2000"):
        parse(_doubling_chain(60))
    assert time.perf_counter() - start < 1.0  # linear in the text: it never writes the tree out


@pytest.mark.parametrize("text, where, says", [
    ("let x = A + W\nsum(W)", (1, 5), "'x' is bound but never used"),  # ill typed, and never checked
    ("let a = W\nlet b = a\nsum(W)", (2, 5), "'b' is bound but never used"),
])
def test_an_unused_let_binding_is_an_error(text, where, says):
    with pytest.raises(ProxySyntaxError, match=says) as info:
        parse(text)
    assert (info.value.line, info.value.column) == where


@pytest.mark.parametrize("digit", ["٣", "７", "²"])
def test_only_ascii_digits_make_numbers(digit):
    with pytest.raises(ProxySyntaxError, match=f"unexpected character '{digit}'"):
        parse(f"sum(W) * {digit}")
