"""Grammar-driven fuzzing of the front end: strings drawn from ``grammar/proxy.lark`` itself.

Whatever the text, ``parse`` + ``check`` must either succeed or raise a ``ProxylangError`` (the CLIs print
those as one line; anything else would be a traceback), and what parses must print back to an equal tree.

The strings come from ``hypothesis.extra.lark.from_lark`` over a ``lark.Lark`` built like the parser's.
Two adjustments keep them cheap and meaningful:

- a *budget* of rule expansions per string, and weights. from_lark picks each rule's alternatives
  uniformly, and in this grammar an expression then holds about five sub-expressions on average, so
  almost every draw overruns hypothesis's buffer: measured ~1 s per kept example, far too slow for 10,000
  strings. Here the shortest alternative of a rule is the likeliest, and past the budget every rule takes
  its shortest alternatives, so the string closes in a few symbols (same grammar, other probabilities);
- *names by context*. ``NAME`` is one terminal for bindings, variables and primitives, and a random name
  almost always ends in "unknown name". The generator emits placeholders ``n0``..``n63`` that are then
  replaced (a ``NAME`` by another ``NAME``, so the string stays in the language) by a fresh or clashing
  binding name, an input or bound name, or a primitive of the call's arity (a reducer at top level).
"""

from __future__ import annotations

import re
from importlib import resources

import lark
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from proxylang import check, parse, to_text
from proxylang.errors import LocatedError, ProxylangError
from proxylang.lang.primitives import PRIMITIVES
from proxylang.stats.netstats import INPUTS

# the parser's grammar file, start rule and options (proxylang/lang/parse.py)
GRAMMAR = (resources.files("proxylang.grammar") / "proxy.lark").read_text(encoding="utf-8")
LARK = lark.Lark(GRAMMAR, start="start", parser="lalr", propagate_positions=True, maybe_placeholders=False)

BUDGET = 24  # rule expansions per string before every rule takes its shortest alternatives
PLACEHOLDERS = [f"n{i}" for i in range(64)]
NUMBERS = ["0", "1", "2", "3", "0.5", ".5", "2.", "007", "1e-3", "2E2", "1e+2", "0.25e1", "1e20", "12345678"]

# Terminals a fixed string or a short list, so that no draw goes through a regex strategy (slow). Every
# NAME and NUMBER ends in white space, or ``x``/``2`` followed by a name or number would lex as one token.
EXPLICIT = {
    "NAME": st.sampled_from(PLACEHOLDERS).map(lambda n: n + " "),
    "NUMBER": st.sampled_from(NUMBERS).map(lambda n: n + " "),
    "LET": st.just("let "), "EQUAL": st.just("="), "COMMA": st.just(","), "LPAR": st.just("("),
    "RPAR": st.just(")"), "COMPARE": st.sampled_from(["<", ">", "=="]), "ADD_OP": st.sampled_from("+-"),
    "MUL_OP": st.sampled_from("*/"), "WS": st.sampled_from([" ", "\n", "\t", "  ", "\r\n"]),
    "COMMENT": st.sampled_from(["# a comment\n", "#\n", "#(W)\n"]),
}


def _closes_a_matrix(name: str) -> bool:
    """Whether ``name`` turns a conv-site matrix into a proxy (``sum(W)``, ``cosine(W, W)``, ...)."""
    args = ", ".join(["W"] * PRIMITIVES[name].arity)
    for text in (f"{name}({args})", f"{name}({args.replace('W', 'gram(W)')})"):
        try:
            check(parse(text))
            return True
        except ProxylangError:
            pass
    return False


REDUCERS = [n for n in PRIMITIVES if _closes_a_matrix(n)]
UNARY_CALLS = [n for n, p in PRIMITIVES.items() if p.arity == 1 or p.literal_exponent]
BINARY_CALLS = [n for n, p in PRIMITIVES.items() if p.arity == 2]
# variables of one string come from one family, so that elementwise operations often agree in shape
FAMILIES = [("W", "G"), ("A",), ("R",), INPUTS]


class _Budgeted(dict):
    """from_lark's table of rule -> alternatives, read once per expansion: past ``left`` expansions, each
    rule draws only among its shortest alternatives (weighted by ``_weight``)."""

    def __init__(self, full: dict) -> None:
        super().__init__(full)
        self.left = 0
        self.full, self.short = {}, {}
        for rule, alternatives in full.items():
            weighted = [a for a in alternatives.elements for _ in range(_weight(a, alternatives.elements))]
            shortest = min(len(a) for a in weighted)
            self.full[rule] = st.sampled_from(weighted)
            self.short[rule] = st.sampled_from([a for a in weighted if len(a) == shortest])

    def __getitem__(self, rule: str):
        self.left -= 1
        return (self.full if self.left >= 0 else self.short)[rule]


def _weight(alternative: tuple, alternatives: list) -> int:
    """Calls with arguments, then names, are the likeliest atoms; elsewhere the shortest alternative is
    (no sign, no comparison, one term of a sum), so that an expression averages well under five
    sub-expressions."""
    names = [symbol.name for symbol in alternative]
    if names[:2] == ["NAME", "LPAR"] and "expr" in names:
        return 6  # a call with arguments
    if names in (["NAME"], ["NUMBER"]):
        return 2 if names == ["NAME"] else 1
    return 3 if len(alternative) == min(len(a) for a in alternatives) else 1


_GENERATOR = from_lark(LARK, start="start", explicit=EXPLICIT)
_TABLE = _Budgeted(_GENERATOR.wrapped_strategy.nonterminal_strategies)
_GENERATOR.wrapped_strategy.nonterminal_strategies = _TABLE


@st.composite
def grammar_strings(draw) -> str:
    """A string of the grammar, its placeholder names replaced by names that fit their place.

    Places are read off the tokens, not a parse: the grammar is ambiguous where a binding ends (``let x =
    W -2`` derives as binding then body ``-2``, but parses as ``x = W - 2`` with no body), so some strings
    it derives are ones the parser rejects, and they are fuzzed too."""
    _TABLE.left = draw(st.integers(3, BUDGET))
    text = draw(_GENERATOR)
    family = draw(st.sampled_from(FAMILIES))
    tokens = list(LARK.lex(text))
    bound: list[str] = []  # visible names: a binding's own name only from the next ``let`` on
    pending: list[str] = []
    calls: list[int] = []  # the parenthesis depth of each open call
    pieces, done, depth = [], 0, 0
    for i, token in enumerate(tokens):
        if token.type in ("LPAR", "RPAR"):
            depth += 1 if token.type == "LPAR" else -1
            if calls and calls[-1] == depth:
                calls.pop()
        elif token.type == "LET":
            bound += pending
            pending.clear()
        if token.type != "NAME":
            continue
        k = int(token[1:])
        if i and tokens[i - 1].type == "LET":  # mostly fresh; sometimes an input, a primitive or a repeat
            everything = [*bound, *pending]
            name = f"v{len(everything)}" if k < 56 else ["W", "sum", *everything][k % (2 + len(everything))]
            pending.append(name)
        elif i + 1 < len(tokens) and tokens[i + 1].type == "LPAR":
            pool = UNARY_CALLS if _argument_count(tokens, i + 1) < 2 else BINARY_CALLS
            if not calls and k < 48:  # outside any call: mostly a primitive that makes a proxy
                pool = [n for n in REDUCERS if n in pool]
            name = pool[k % len(pool)]
            calls.append(depth)
        else:  # a variable: mostly from the family or bound; sometimes a primitive or an unknown name
            pool = [*family, *bound] if k < 60 else [*family, "sum", "x"]
            name = pool[k % len(pool)]
        pieces += [text[done:token.start_pos], name]
        done = token.end_pos
    return "".join(pieces) + text[done:]


def _argument_count(tokens: list[lark.Token], open_at: int) -> int:
    """Arguments of the call whose '(' is ``tokens[open_at]``."""
    if tokens[open_at + 1].type == "RPAR":
        return 0
    depth, commas = 0, 0
    for token in tokens[open_at:]:
        depth += {"LPAR": 1, "RPAR": -1}.get(token.type, 0)
        if depth == 0:
            break
        commas += token.type == "COMMA" and depth == 1
    return commas + 1


# ---- the properties ------------------------------------------------------------------------------

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _front_end(text: str):
    """``check(parse(text))``, or the ProxylangError it raised after checking that the error points
    inside the text; any other exception propagates and fails the test."""
    try:
        return check(parse(text))
    except ProxylangError as exc:
        assert isinstance(exc, LocatedError) and exc.message, exc
        if exc.line is not None:
            lines = text.splitlines() or [""]
            assert 1 <= exc.line <= len(lines) + 1 and exc.column >= 1, (exc.line, exc.column, text)
        return exc


def _deeply_nested(levels: int) -> str:
    return "sum(" + "exp(" * levels + "W" + ")" * levels + ")"


def _generated_text_parses_and_checks_or_raises_proxylang_error(text: str) -> None:
    outcome = _front_end(text)
    event(type(outcome).__name__)
    if not isinstance(outcome, ProxylangError):
        assert outcome.type.level is not None and not outcome.type.is_matrix, text


@settings(FUZZ, max_examples=4000)
@example("sum(W)").via("a plain proxy")
@example("let c = R > 0 # codes\nslogdet(layersum(gram(c) + gram(1 - c)))").via("bindings and a comment")
@example("sum(W) + \u0663").via("a Unicode digit")
@example(_deeply_nested(1000)).via("deeper than the stack: was a RecursionError")
@example("let a0 = W\n" + "".join(f"let a{i} = exp(a{i - 1})\n" for i in range(1, 150)) + "sum(a149)").via(
    "deep only once its bindings are inlined")
@example("sum(W * 1e400)").via("a literal no float holds: parsed to inf")
@given(grammar_strings())
def test_generated_text_parses_and_checks_or_raises_proxylang_error(text):
    """Every string of the grammar ends in a typed proxy or a located ProxylangError, never a crash."""
    _generated_text_parses_and_checks_or_raises_proxylang_error(text)


TOKEN = re.compile(r"[A-Za-z_0-9.]+|\s+|.", re.S)
NOISE = [*"()+-*/<>=,.#eE_ \n\t0123456789", "let", "W", "sum", "1e999", "\x00", "\u00e9", "\U0001f600"]


@st.composite
def mutated_strings(draw) -> str:
    """A grammar string after 1-4 character or token edits: deletions, insertions, swaps, duplications."""
    text = draw(grammar_strings())
    for _ in range(draw(st.integers(1, 4))):
        by_token = draw(st.booleans())
        units = TOKEN.findall(text) if by_token else list(text)
        if not units:
            units = [""]
        i = draw(st.integers(0, len(units) - 1))
        edit = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "replace"]))
        if edit == "delete":
            del units[i]
        elif edit == "insert":
            units.insert(i, draw(st.sampled_from(NOISE)))
        elif edit == "swap":
            j = draw(st.integers(0, len(units) - 1))
            units[i], units[j] = units[j], units[i]
        elif edit == "duplicate":
            units.insert(i, units[i])
        else:
            units[i] = draw(st.sampled_from(NOISE))
        text = "".join(units)
    return text


@settings(FUZZ, max_examples=3500)
@example("sum(W").via("unclosed call")
@example("sum(W))").via("extra parenthesis")
@example("let = W").via("binding without a name")
@example("sum(W) # comment without newline").via("comment at the end")
@example("sum(W)\x00").via("a control character")
@example("pow(W, -)").via("dangling sign")
@example("").via("empty text")
@given(mutated_strings())
def test_mutated_text_parses_and_checks_or_raises_proxylang_error(text):
    """Near-misses of the grammar (typos, lost or doubled tokens) fail cleanly with a located error."""
    _generated_text_parses_and_checks_or_raises_proxylang_error(text)


def _prints_back_to_an_equal_tree(text: str) -> None:
    """For every text that parses (whether or not it checks): the printed spelling parses to an equal
    tree (so an equal canonical key and type) and is a fixed point of printing."""
    try:
        node = parse(text)
    except ProxylangError:
        event("round trip: not parsed")
        return
    printed = to_text(node)
    again = parse(printed)
    assert again == node, (text, printed)
    assert to_text(again) == printed
    checked = not isinstance(_front_end(text), ProxylangError)
    event(f"round trip: {'checked proxy' if checked else 'parsed, ill typed'}")


@settings(FUZZ, max_examples=3000)
@example("let x = W * -1\nsum(-x - -2 * x)").via("signs and negative literals")
@example("sum(W - (G - W)) < mean((W < G) < W)").via("associativity and comparisons")
@example("sum(pow(W) / pow(G, .5)) + 1e20").via("default exponent and big literal")
@example("sum(W * 1e400)").via("a literal no float holds: was Num(inf), printed as the unknown name inf")
@given(grammar_strings())
def test_parsed_text_prints_back_to_an_equal_tree(text):
    """to_text(parse(s)) parses to the *same tree*, not just the same canonical key: the printer needs
    no canonicalisation to round-trip, only precedence-aware parentheses."""
    _prints_back_to_an_equal_tree(text)
