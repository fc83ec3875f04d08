"""Hostile-but-realistic input for the ``proxylang`` and ``segsearch`` command lines.

What it measures: how every command ends when it is handed bad input. Each case ends in one of

- ``clean``: exit code 2 and stderr exactly one non-empty line starting with ``error: `` (the contract);
- ``accepted``: exit code 0 (valid input that ran fine; expected for many proxy texts);
- ``messy``: exit code 2 but stderr does not show that one line (as a terminal shows it: a progress bar
  that cleared itself does not count; warnings, several lines, a bar left behind do);
- ``traceback``: stderr holds ``Traceback`` or the exit code is anything else, a signal included;
- ``hang``: the case ran past ``--timeout`` (its whole process group is killed, after a SIGABRT that
  makes Python's faulthandler print where it was stuck).

Part 1 (``proxies``): at least ``--proxies`` proxy texts (hand-written plus seeded generated and mutated
ones, all reproducible from ``--seed``) are run as ``proxylang check FILE`` (some as ``proxylang check -``
with the text, or a device, on stdin). A fresh ``proxylang`` process costs seconds (the torch import),
so these run in forked children of this process: ``proxylang.cli.main`` is imported once here, each
child redirects fds 0/1/2 and calls the command group's ``main`` like the console script does. A few
cases are re-run as real subprocesses to show that both ways agree.

Part 2 (``options``): about 300 hostile option, environment and config-file combinations, each a real
subprocess (``proxylang ...`` / ``segsearch ...``, with ``PROXYLANG_DATA`` set, fresh cache folders and
``PROXYLANG_THREADS=1``). Every one should fail fast, before real work; commands that could start work
get tiny inputs (two architectures, 16-32 pixel images) so that a wrongly accepted value shows as a hang
or a traceback instead of a long run. A few ``control`` cases run the same commands without a hostile
value (they must be ``accepted``, else the fixtures are broken). Every case runs under an address-space
cap (``--memory-gb``), so a runaway read cannot take the machine.

It prints a table (overall, per part and category), then every failing case (traceback, hang, messy)
grouped by its signature (the innermost project frame of the traceback and the exception type, or where
faulthandler found a hung case) with its last stderr line and the command to reproduce it, then the
hostile options that were accepted. Exit status 1 if any case gave a traceback or hung, else 0. Case
numbers are stable for a given ``--seed`` and ``--proxies`` (proxies from 0, options from 1000), so
``--ids`` re-runs exactly the cases a report names.

Run from the repository root. On 2 shared CPU cores, 1,000 proxy cases take about a minute; the option
cases take 10-25 minutes (each subprocess imports torch, 5-10 s under load) and about 4 GB of temporary
disk (the statistics cache of the evolve cases), deleted at the end unless ``--workdir`` is given::

    python3 benchmarks/hostile.py                  # both parts
    python3 benchmarks/hostile.py --only proxies --proxies 2000 --seed 3
    python3 benchmarks/hostile.py --only options --workdir /tmp/hostile   # keep the inputs to reproduce
    python3 benchmarks/hostile.py --ids 242,1166 --show-all               # re-run two cases, show each
    python3 benchmarks/hostile.py --match evolve-config --list            # print cases, run nothing
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = os.environ.get("PROXYLANG_DATA", "/work/shared/benchmarks")
OUTCOMES = ("clean", "accepted", "messy", "traceback", "hang")
FAILING = ("traceback", "hang", "messy")
MAX_READ = 4 << 20  # bytes of a case's stderr/stdout kept (head and tail)


# ------------------------------------------------------------------------------------------ cases


@dataclass
class Case:
    """One command to run. ``@FILE@`` in ``argv`` or ``stdin`` is the case's own file holding ``text``,
    ``@W@`` the work folder."""

    part: str
    category: str
    desc: str
    argv: list[str]
    program: str = "proxylang"
    text: bytes | None = None
    filename: bytes | None = None  # the name of the case's file, when it matters
    stdin: str = "devnull"  # devnull, closed, or a path (tokens allowed)
    env: dict[str, str] = field(default_factory=dict)
    timeout_factor: float = 1.0
    index: int = 0


@dataclass
class Result:
    """How one case ended."""

    case: Case
    outcome: str
    code: int | None
    seconds: float
    stderr: str
    stdout: str

    @property
    def noise(self) -> str:
        """For a messy case: the first stderr fragment that is not the ``error:`` line."""
        parts = [p.strip() for p in re.split(r"[\r\n]", self.stderr) if p.strip()]
        other = [p for p in parts if not p.startswith("error: ")]
        return f"{len(parts)} stderr fragments, first other: {other[0][:100]!r}" if other else ""

    @property
    def last_line(self) -> str:
        """The last non-empty stderr line (or stdout's, when stderr is empty); for a hang, where
        faulthandler found the main thread."""
        if self.outcome == "hang":
            frames = stuck_frames(self.stderr)
            if frames:
                f, ln, fn = frames[0]
                return f"stuck at {short_path(f)}:{ln} in {fn}"
            tail = [ln.strip() for ln in self.stderr.replace("\r", "\n").splitlines() if ln.strip()]
            return "stuck, no stack printed" + (f"; stderr ends {tail[-1][:120]!r}" if tail else "")
        for text in (self.stderr, self.stdout):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1]
        return ""


def classify(code: int | None, stderr: str) -> str:
    """The outcome of a finished (``code``) or timed-out (``None``) case, by the module's definitions."""
    if code is None:
        return "hang"
    if "Traceback" in stderr or code not in (0, 2):
        return "traceback"
    if code == 0:
        return "accepted"
    lines = shown_lines(stderr)
    return "clean" if len(lines) == 1 and lines[0].startswith("error: ") and lines[0][7:].strip() else "messy"


def shown_lines(stderr: str) -> list[str]:
    """The non-empty lines a terminal shows: a progress bar that cleared itself (carriage returns,
    cursor moves) leaves nothing; one that stayed is a line of its own, so the case is messy."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", stderr)
    return [shown for line in text.split("\n") if (shown := line.split("\r")[-1].strip())]


def tok(text: str) -> bytes:
    """A proxy text as UTF-8 bytes."""
    return text.encode("utf-8", "surrogatepass")


def seed_texts() -> dict[str, str]:
    """The valid example proxies (examples/*.px and proxylang/library/*.px), distinct texts only."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    for folder in (REPO / "examples", REPO / "proxylang" / "library"):
        for path in sorted(folder.glob("*.px")):
            text = path.read_text(encoding="utf-8")
            if text not in seen:
                seen.add(text)
                found[f"{folder.name}/{path.name}"] = text
    return found


def strip_comments(text: str) -> str:
    """The proxy without its comment lines (for mutations that should hit code, not comments)."""
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")) + "\n"


def primitive_table() -> list[tuple[str, int, str | None, bool, bool]]:
    """(name, arity, infix, literal exponent, reducer) of every primitive, read from the registry."""
    from proxylang.lang.primitives import PRIMITIVES

    return [(p.name, p.arity, p.infix, p.literal_exponent, p.reducer) for p in PRIMITIVES.values()]


def input_names() -> list[str]:
    """The statistics a proxy reads (A, G, W, R)."""
    try:
        from proxylang.stats.netstats import INPUTS

        return list(INPUTS)
    except ImportError:
        return ["A", "G", "W", "R"]


def check_case(
    category: str,
    desc: str,
    text: bytes | None,
    *,
    via_stdin: bool = False,
    argv: list[str] | None = None,
    stdin: str | None = None,
    filename: bytes | None = None,
) -> Case:
    """A ``proxylang check`` case: FILE holding ``text``, or ``-`` with ``text`` on stdin."""
    if argv is None:
        argv = ["check", "-"] if via_stdin else ["check", "@FILE@"]
    if stdin is None:
        stdin = "@FILE@" if via_stdin else "devnull"
    return Case("proxies", category, desc, argv, text=text, stdin=stdin, filename=filename)


def encoding_cases(rng: random.Random, seeds: dict[str, str]) -> list[Case]:
    """Bytes that are not (or not quite) UTF-8 proxy text."""
    ok = "sum(W * G)\n"
    nwot = seeds.get("examples/nwot.px", ok)
    cases = [
        ("Latin-1 comment", "# café ü ß\nsum(W)\n".encode("latin-1")),
        ("Latin-1 letter in code", "sum(W) * é\n".encode("latin-1")),
        ("UTF-16 with BOM", ok.encode("utf-16")),
        ("UTF-16-LE without BOM", ok.encode("utf-16-le")),
        ("UTF-32 with BOM", ok.encode("utf-32")),
        ("gzip of a valid proxy", gzip.compress(ok.encode(), mtime=0)),
        ("zlib of a valid proxy", zlib.compress(nwot.encode())),
        ("PNG header", b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + rng.randbytes(40)),
        ("ELF header", b"\x7fELF\x02\x01\x01" + bytes(9) + rng.randbytes(48)),
        ("PDF header", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
        ("NUL byte after proxy", b"sum(W)\x00"),
        ("NUL byte inside a call", b"sum(\x00W)"),
        ("NUL byte in a comment", b"# a \x00 b\nsum(W)\n"),
        ("only NUL bytes", bytes(100)),
        ("UTF-8 BOM + valid proxy", b"\xef\xbb\xbf" + ok.encode()),
        ("UTF-8 BOM + nwot.px", b"\xef\xbb\xbf" + nwot.encode()),
        ("BOM in the middle", tok("sum(W)\ufeff + sum(G)\n")),
        ("CRLF line ends (nwot.px)", nwot.replace("\n", "\r\n").encode()),
        ("lone CR line ends (nwot.px)", nwot.replace("\n", "\r").encode()),
        ("surrogate-like bytes ED A0 80 in a comment", b"sum(W) # \xed\xa0\x80\n"),
        ("surrogate-like bytes ED B0 80 in code", b"sum(\xed\xb0\x80W)\n"),
        ("overlong UTF-8 slash C0 AF", b"sum(W) \xc0\xaf 2\n"),
        ("truncated multibyte at EOF", b"sum(W) # \xe2\x82"),
        ("0xFF 0xFE garbage then proxy", b"\xff\xfesum(W)\n"),
        ("no-break space before proxy", tok("\u00a0sum(W)\n")),
        ("line separator U+2028 after proxy", tok("sum(W)\u2028")),
        ("paragraph separator between lets", tok("let x = W\u2029sum(x)\n")),
        ("zero-width space in a call", tok("sum(\u200bW)\n")),
        ("ideographic space", tok("\u3000sum(W)\n")),
        ("form feed", b"sum(W)\x0c\n"),
        ("vertical tab", b"\x0bsum(W)\n"),
        ("escape sequences (ANSI colours)", b"\x1b[31msum(W)\x1b[0m\n"),
        ("backspaces", b"sum(X\x08W)\n"),
        ("right-to-left override in a comment", tok("sum(W) # \u202e)W(mus\n")),
        ("combining accent on an input", tok("sum(W\u0301)\n")),
        ("Greek name in a let", tok("let λ = W\nsum(λ)\n")),
        ("fullwidth W", tok("sum(\uff37)\n")),
        ("fullwidth primitive name", tok("\uff53\uff55\uff4d(W)\n")),
        ("Cyrillic A look-alike", tok("sum(\u0410)\n")),
        ("emoji in a comment (valid)", tok("# \U0001f600 proxy\nsum(W)\n")),
        ("emoji as a name", tok("sum(\U0001f600)\n")),
        ("astral character in code", tok("sum(W) + \U00010348\n")),
        ("DEL character", b"sum(W)\x7f\n"),
        ("C1 control NEL U+0085", tok("sum(W)\u0085")),
    ]
    for n in (1, 7, 64, 4096):
        cases.append((f"random bytes ({n})", rng.randbytes(n)))
    cases.append(("random printable ASCII (200)", bytes(rng.randrange(32, 127) for _ in range(200))))
    cases.append(
        ("random Unicode text (100)", tok("".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(100))))
    )
    out = [check_case("encodings", d, t) for d, t in cases]
    for d, t in cases[:20:3]:  # a few through stdin as well
        out.append(check_case("encodings", f"{d} (stdin)", t, via_stdin=True))
    return out


def structure_cases(prims: list[tuple[str, int, str | None, bool, bool]]) -> list[Case]:
    """Malformed structure: empty, comments only, unbalanced, stray operators, lets, names, arities."""
    texts = [
        ("empty file", ""),
        ("one newline", "\n"),
        ("only whitespace", "   \n\t \n  "),
        ("only a comment", "# just a comment\n"),
        ("only comments, no newline at EOF", "# a\n# b"),
        ("comment without newline after proxy", "sum(W) # trailing"),
        ("unbalanced: missing close", "sum((W)"),
        ("unbalanced: extra close", "sum(W))"),
        ("unbalanced: close first", ")sum(W("),
        ("unbalanced: only parens", "((((("),
        ("empty parens", "()"),
        ("stray trailing plus", "sum(W) +"),
        ("stray leading star", "* sum(W)"),
        ("operator pair", "sum(W) + * 2"),
        ("trailing comparison", "sum(W) =="),
        ("double comparison", "sum(W) < sum(G) < 1"),
        ("chained equality", "sum(W) == sum(G) == 1"),
        ("python power", "sum(W) ** 2"),
        ("caret", "sum(W) ^ 2"),
        ("modulo", "sum(W) % 2"),
        ("floor division", "sum(W) // 2"),
        ("not-equal", "sum(W) != sum(G)"),
        ("less-or-equal", "sum(W) <= 1"),
        ("assignment without let", "x = sum(W)\nx"),
        ("semicolon", "sum(W);"),
        ("two expressions", "sum(W)\nsum(G)"),
        ("two expressions on one line", "sum(W) sum(G)"),
        ("trailing comma", "sum(W,)"),
        ("trailing comma in pow", "pow(W, 2,)"),
        ("leading comma", "sum(,W)"),
        ("only a comma", "sum(,)"),
        ("no arguments", "sum()"),
        ("brackets", "sum([W])"),
        ("braces", "{sum(W)}"),
        ("string literal", "sum('W')"),
        ("double-quoted literal", 'sum("W")'),
        ("backslash continuation", "sum(W) \\\n + 1"),
        ("python conditional", "sum(W) if 1 else sum(G)"),
        ("lambda", "lambda x: sum(x)"),
        ("let without body", "let x = sum(W)\n"),
        ("let without value", "let x =\nsum(W)"),
        ("let without name", "let = sum(W)\nsum(W)"),
        ("bare let", "let"),
        ("let let", "let let = W\nsum(W)"),
        ("let after the body", "sum(x)\nlet x = W"),
        ("duplicate let", "let x = W\nlet x = G\nsum(x)"),
        ("let binds a primitive (sum)", "let sum = W\nsum(W)"),
        ("let binds a primitive (gram)", "let gram = W\nsum(gram)"),
        ("let binds input A", "let A = W\nsum(A)"),
        ("let binds input G", "let G = W\nsum(G)"),
        ("let binds input W", "let W = G\nsum(W)"),
        ("let binds input R", "let R = A\nsum(R)"),
        ("self-referencing let", "let x = x + W\nsum(x)"),
        ("let uses a later let", "let a = b\nlet b = W\nsum(a)"),
        ("let named like a keyword prefix (valid)", "let let_x = W\nsum(let_x)"),
        ("let name with digits first", "let 1x = W\nsum(W)"),
        ("unknown input X", "sum(X)"),
        ("lower-case input", "sum(w)"),
        ("unknown primitive", "foo(W)"),
        ("misspelt primitive", "summ(W)"),
        ("calling an input", "W(1)"),
        ("calling a let name", "let f = W\nf(W)"),
        ("primitive as a value", "sum(W) + gram"),
        ("primitive as the whole proxy", "sum"),
        ("input only", "W"),
        ("nested call without parens", "sum W"),
        ("call with space before paren (valid)", "sum (W)"),
        ("call split across lines (valid)", "sum(\nW\n)"),
        ("comment inside a call", "sum(W # c\n)"),
        ("comment opens a paren", "sum(W) # (\n"),
        ("unary plus chain (valid)", "+-+-sum(W)"),
        ("unary on a call result", "-sum(W)"),
        ("exponent missing", "pow(W)"),
        ("exponent is a name", "pow(W, G)"),
        ("exponent is an expression", "pow(W, 1 + 1)"),
        ("exponent negative literal", "sum(pow(W, -2))"),
        ("exponent negated name", "sum(pow(W, -W))"),
    ]
    out = [check_case("structure", d, tok(t)) for d, t in texts]
    for name, arity, _infix, literal, _reducer in prims:
        wrong = ", ".join(["W"] * (arity + 1 + literal))
        out.append(
            check_case(
                "structure", f"{name} with {arity + 1 + literal} arguments", tok(f"sum({name}({wrong}))")
            )
        )
        out.append(check_case("structure", f"{name} with no arguments", tok(f"{name}()")))
    for d, t in texts[:6]:
        out.append(check_case("structure", f"{d} (stdin)", tok(t), via_stdin=True))
    return out


def doubling(lines: int) -> str:
    """``let a1 = W + W``, ``let a2 = a1 + a1``, ... then ``sum(aN)``: 2**N leaves once inlined."""
    body = ["let a1 = W + W"] + [f"let a{i} = a{i - 1} + a{i - 1}" for i in range(2, lines + 1)]
    return "\n".join(body) + f"\nsum(a{lines})\n"


def depth_cases() -> list[Case]:
    """Deep nesting, long chains, let chains and large files."""
    out: list[Case] = []
    for n in (50, 99, 100, 101, 1000, 10_000):
        out.append(
            check_case("depth/size", f"sum(abs^{n}(W))", tok("sum(" + "abs(" * n + "W" + ")" * n + ")"))
        )
    for n in (100, 1000, 10_000):
        out.append(
            check_case("depth/size", f"sum(W + W + ... {n} terms)", tok("sum(" + " + ".join(["W"] * n) + ")"))
        )
        out.append(
            check_case(
                "depth/size",
                f"{n} terms right-nested in parens",
                tok("sum(" + "W + (" * (n - 1) + "W" + ")" * (n - 1) + ")"),
            )
        )
    out += [
        check_case(
            "depth/size",
            "10,000 redundant parentheses",
            tok("sum(" + "(" * 10_000 + "W" + ")" * 10_000 + ")"),
        ),
        check_case("depth/size", "10,000 unary minus", tok("sum(" + "-" * 10_000 + "W)")),
        check_case("depth/size", "sum(W) * 1 ... 10,000 times", tok("sum(W)" + " * 1" * 10_000)),
        check_case("depth/size", "sum with 1,000 arguments", tok("sum(" + ", ".join(["W"] * 1000) + ")")),
        check_case(
            "depth/size",
            "1,000 nested lets via abs",
            tok(
                "let a0 = W\n"
                + "".join(f"let a{i} = abs(a{i - 1})\n" for i in range(1, 1000))
                + "sum(a999)\n"
            ),
        ),
        check_case(
            "depth/size",
            "1,000 alias lets",
            tok("let a0 = W\n" + "".join(f"let a{i} = a{i - 1}\n" for i in range(1, 1000)) + "sum(a999)\n"),
        ),
        check_case(
            "depth/size",
            "1,000 additive lets",
            tok(
                "let a0 = W\n" + "".join(f"let a{i} = a{i - 1} + W\n" for i in range(1, 1000)) + "sum(a999)\n"
            ),
        ),
        check_case(
            "depth/size",
            "10,000 unused-free lets summed",
            tok(
                "".join(f"let b{i} = sum(W)\n" for i in range(10_000))
                + "sum(W)"
                + "".join(f" + b{i}" for i in range(10_000))
                + "\n"
            ),
        ),
    ]
    for n in (10, 18, 25, 40, 60):
        out.append(check_case("depth/size", f"let-doubling chain of {n} lines", tok(doubling(n))))
    out.append(
        check_case("depth/size", "let-doubling chain of 40 lines (stdin)", tok(doubling(40)), via_stdin=True)
    )
    out += [
        check_case("depth/size", "1 MB of spaces before a valid proxy", tok(" " * 1_000_000 + "sum(W)\n")),
        check_case("depth/size", "1 MB of newlines before a valid proxy", tok("\n" * 1_000_000 + "sum(W)\n")),
        check_case("depth/size", "1 MB comment line", tok("#" + "x" * 1_000_000 + "\nsum(W)\n")),
        check_case("depth/size", "1 MB unknown name", tok("sum(" + "a" * 1_000_000 + ")\n")),
        check_case("depth/size", "1 MB of 'W + ' (unterminated)", tok("sum(" + "W + " * 250_000)),
        check_case("depth/size", "100 KB of 'W + ' (unterminated)", tok("sum(" + "W + " * 25_000)),
        check_case("depth/size", "100,000-digit number", tok("sum(W) * " + "9" * 100_000 + "\n")),
        check_case(
            "depth/size", "100 MB sparse file (valid proxy, then NULs)", None, argv=["check", "@S:sparse100@"]
        ),
        check_case(
            "depth/size", "63 MiB sparse file (under the 64 MiB cap)", None, argv=["check", "@S:sparse63@"]
        ),
        check_case("depth/size", "64 MiB + 1 byte sparse file", None, argv=["check", "@S:sparse64p1@"]),
        check_case(
            "depth/size", "100 MB sparse file on stdin", None, argv=["check", "-"], stdin="@S:sparse100@"
        ),
    ]
    return out


def literal_cases() -> list[Case]:
    """Numbers at and past float limits, and spellings Python knows but the grammar may not."""
    texts = [
        ("overflowing literal 1e999", "sum(W) * 1e999"),
        ("underflowing literal 1e-400", "sum(W) * 1e-400"),
        ("largest double", "sum(W) * 1.7976931348623157e308"),
        ("just past the largest double", "sum(W) * 1.8e308"),
        ("huge exponent in pow", "sum(pow(W, 1e308))"),
        ("overflowing exponent in pow", "sum(pow(W, 1e309))"),
        ("huge negative exponent in pow", "sum(pow(W, -1e308))"),
        ("tiny exponent in pow", "sum(pow(W, 1e-320))"),
        ("exponent with 20 digits", "sum(W) * 1e99999999999999999999"),
        ("negative exponent with 20 digits", "sum(W) * 1e-99999999999999999999"),
        ("400-digit integer", "sum(W) * " + "9" * 400),
        ("0.000...1 (400 zeros)", "sum(W) * 0." + "0" * 400 + "1"),
        ("Arabic-Indic digit", "sum(W) * \u0663"),
        ("fullwidth digit", "sum(W) * \uff17"),
        ("superscript two", "sum(W) * \u00b2"),
        ("Devanagari digits in an exponent", "sum(pow(W, \u0968))"),
        ("mixed ASCII and Thai digits", "sum(W) * 1\u0e53"),
        ("hex literal", "sum(W) * 0x10"),
        ("octal literal", "sum(W) * 0o17"),
        ("binary literal", "sum(W) * 0b101"),
        ("underscore separator", "sum(W) * 1_000"),
        ("leading zeros (valid)", "sum(W) * 007"),
        ("trailing dot (valid)", "sum(W) * 1."),
        ("leading dot (valid)", "sum(W) * .5"),
        ("dot exponent", "sum(W) * 1.e5"),
        ("bare exponent", "sum(W) * 1e"),
        ("exponent sign only", "sum(W) * 1e+"),
        ("dot only", "sum(W) * ."),
        ("two dots", "sum(W) * 1.2.3"),
        ("comma decimal", "sum(W) * 1,5"),
        ("imaginary", "sum(W) * 1j"),
        ("inf as a name", "sum(W) * inf"),
        ("nan as a name", "sum(W) + nan"),
        ("NaN as a name", "sum(W) + NaN"),
        ("Infinity as a name", "sum(W) * Infinity"),
        ("-inf", "sum(W) * -inf"),
        ("pow with inf exponent name", "sum(pow(W, inf))"),
        ("division by literal zero (valid statically)", "sum(W) / 0"),
        ("zero times proxy", "0 * sum(W)"),
        ("negative zero", "sum(W) * -0.0"),
        ("constant-only overflow 1e308 * 10", "sum(W) + 1e308 * 10"),
    ]
    return [check_case("literals", d, tok(t)) for d, t in texts]


def typing_cases(prims: list[tuple[str, int, str | None, bool, bool]], inputs: list[str]) -> list[Case]:
    """Ill-typed (and some well-typed) combinations; every primitive on every input."""
    texts = [
        ("sum(A + W): mismatched matrices", "sum(A + W)"),
        ("sum(W + R): conv and relu sites", "sum(W + R)"),
        ("sum(W) + sum(R): mixed levels", "sum(W) + sum(R)"),
        ("layersum(sum(W)) + sum(W)", "layersum(sum(W)) + sum(W)"),
        ("matmul(W, W): O×K @ O×K", "sum(matmul(W, W))"),
        ("matmul(W, gram(W))", "sum(matmul(W, gram(W)))"),
        ("matmul(gram(W), W) (valid)", "sum(matmul(gram(W), W))"),
        ("matmul(A, W)", "sum(matmul(A, W))"),
        ("slogdet of a non-square matrix", "slogdet(W)"),
        ("slogdet(gram(W))", "slogdet(gram(W))"),
        ("norm_avt of a matrix", "norm_avt(W)"),
        ("layersum of a matrix", "layersum(W)"),
        ("layersum twice", "layersum(layersum(sum(W)))"),
        ("norm_avt twice", "norm_avt(norm_avt(sum(W)))"),
        ("hamming(A, R)", "sum(hamming(A, R))"),
        ("pairwise(W, G) (valid)", "sum(pairwise(W, G))"),
        ("cosine(W, A)", "cosine(W, A)"),
        ("kl(R, R)", "kl(R, R)"),
        ("sum of a scalar", "sum(sum(W))"),
        ("gram of a scalar", "gram(sum(W))"),
        ("constant only: 1 + 2", "1 + 2"),
        ("constant only: pow(2, 3)", "pow(2, 3)"),
        ("a lone number", "42"),
        ("matrix result: W", "W"),
        ("matrix result: W * G", "W * G"),
        ("matrix result: gram(R)", "gram(R)"),
        ("comparison of matrices", "W > G"),
        ("unused ill-typed let", "let x = A + W\nsum(W)"),
        ("unused well-typed let", "let x = W + G\nsum(W)"),
        ("ill-typed let used", "let x = A + W\nsum(x)"),
        ("let of a constant", "let k = 2\nsum(W) * k"),
        ("let of a primitive name as value", "let k = sum\nk"),
        ("pow of a matrix by a matrix", "sum(pow(W, W))"),
        ("pow with exponent 0 (valid)", "sum(pow(W, 0))"),
        ("pow of a constant by a literal", "sum(W) + pow(2, 0.5)"),
        ("exp of a huge constant", "sum(W) + exp(1e308)"),
        ("log of zero constant", "sum(W) + log(0)"),
        ("invert of zero constant", "sum(W) * invert(0)"),
        ("softmax of a scalar", "softmax(sum(W))"),
        ("normalize of a constant", "sum(W) + normalize(1)"),
        ("norm_avt of a constant", "sum(W) + norm_avt(1)"),
        ("layersum of a constant", "sum(W) + layersum(1)"),
        ("slogdet of a constant", "sum(W) + slogdet(1)"),
        ("gram of a constant", "sum(W) + gram(1)"),
    ]
    out = [check_case("typing", d, tok(t)) for d, t in texts]
    for name, arity, _infix, literal, _reducer in prims:
        for x in inputs:
            args = ", ".join([x] * arity) if not literal else f"{x}, 2"
            out.append(check_case("typing", f"sum({name}({x}...))", tok(f"sum({name}({args}))")))
        args = ", ".join(["W"] * arity) if not literal else "W, 2"
        out.append(check_case("typing", f"{name}(W...) unreduced", tok(f"{name}({args})")))
    return out


def stdin_cases() -> list[Case]:
    """stdin that is closed, empty, endless or random; FILE arguments that are not regular files."""
    ok = tok("sum(W)\n")
    return [
        check_case("stdin/files", "check - with stdin closed", None, argv=["check", "-"], stdin="closed"),
        check_case("stdin/files", "check - with /dev/null", None, argv=["check", "-"], stdin="devnull"),
        check_case("stdin/files", "check - with /dev/zero", None, argv=["check", "-"], stdin="/dev/zero"),
        check_case(
            "stdin/files", "check - with /dev/urandom", None, argv=["check", "-"], stdin="/dev/urandom"
        ),
        check_case("stdin/files", "check - with a valid proxy (valid)", ok, via_stdin=True),
        check_case("stdin/files", "FILE is /dev/zero", None, argv=["check", "/dev/zero"]),
        check_case("stdin/files", "FILE is /dev/urandom", None, argv=["check", "/dev/urandom"]),
        check_case("stdin/files", "FILE is /dev/null", None, argv=["check", "/dev/null"]),
        check_case(
            "stdin/files",
            "FILE is /dev/stdin (a valid proxy)",
            ok,
            argv=["check", "/dev/stdin"],
            stdin="@FILE@",
        ),
        check_case("stdin/files", "FILE is a FIFO with no writer", None, argv=["check", "@S:fifo@"]),
        check_case("stdin/files", "FILE is a directory", None, argv=["check", "@S:dir@"]),
        check_case("stdin/files", "FILE is the root directory", None, argv=["check", "/"]),
        check_case("stdin/files", "FILE does not exist", None, argv=["check", "@W@/no/such/file.px"]),
        check_case("stdin/files", "FILE is an empty string", None, argv=["check", ""]),
        check_case("stdin/files", "FILE under a regular file", None, argv=["check", "@S:regular@/x.px"]),
        check_case("stdin/files", "FILE is a symlink loop", None, argv=["check", "@S:loop@"]),
        check_case("stdin/files", "FILE is a dangling symlink", None, argv=["check", "@S:dangling@"]),
        check_case(
            "stdin/files", "FILE name of 5,000 characters", None, argv=["check", "@W@/" + "n" * 5000 + ".px"]
        ),
        check_case("stdin/files", "FILE is unreadable (mode 000)", None, argv=["check", "@S:noread@"]),
        check_case("stdin/files", "FILE is /proc/self/environ", None, argv=["check", "/proc/self/environ"]),
        check_case("stdin/files", "FILE is /proc/self/mem", None, argv=["check", "/proc/self/mem"]),
        check_case("stdin/files", "FILE name with a newline", ok, filename=b"new\nline.px"),
        check_case("stdin/files", "FILE name with invalid UTF-8", ok, filename=b"bad\xff\xfename.px"),
        check_case("stdin/files", "FILE name with a terminal escape", ok, filename=b"esc\x1b[2Jape.px"),
        check_case("stdin/files", "FILE name starting with a dash", None, argv=["check", "-x.px"]),
        check_case("stdin/files", "FILE is --help (valid)", None, argv=["check", "--help"]),
        check_case("stdin/files", "two FILE arguments", ok, argv=["check", "@FILE@", "@FILE@"]),
        check_case("stdin/files", "no FILE argument", None, argv=["check"]),
    ]


def random_expr(
    rng: random.Random,
    prims: list[tuple[str, int, str | None, bool, bool]],
    inputs: list[str],
    depth: int,
    names: list[str],
) -> str:
    """A random well-formed-looking expression over the primitives; arities are right most of the time."""
    if depth <= 0 or rng.random() < 0.2:
        pick = rng.random()
        if pick < 0.6:
            return rng.choice(inputs)
        if pick < 0.75 and names:
            return rng.choice(names)
        return rng.choice(["0", "1", "2", "0.5", ".5", "3.", "1e-3", "2E+2", "-1", "10", "1e30", "1e-30"])
    name, arity, infix, literal, _ = rng.choice(prims)
    sub = [random_expr(rng, prims, inputs, depth - 1, names) for _ in range(arity)]
    if literal:
        sub[-1] = rng.choice(["2", "0.5", "-1", "0", "3", sub[-1]]) if rng.random() < 0.9 else sub[-1]
        if rng.random() < 0.1:
            sub = sub[:1]  # default exponent
    if rng.random() < 0.05:
        sub = sub[:-1] if rng.random() < 0.5 else sub + [rng.choice(inputs)]
    if infix and len(sub) == 2 and rng.random() < 0.7:
        text = f"{sub[0]} {infix} {sub[1]}"
        return f"({text})" if rng.random() < 0.7 else text
    return f"{name}({', '.join(sub)})"


def random_proxy(
    rng: random.Random, prims: list[tuple[str, int, str | None, bool, bool]], inputs: list[str]
) -> str:
    """A random proxy text: a few lets, then an expression, often closed by a reducer."""
    reducers = [p[0] for p in prims if p[4]] or ["sum"]
    lines, names = [], []
    for i in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
        value = random_expr(rng, prims, inputs, rng.randint(1, 3), names)
        name = f"v{i}"
        lines.append(f"let {name} = {value}")
        names.append(name)
    body = random_expr(rng, prims, inputs, rng.randint(1, 4), names)
    if rng.random() < 0.6:
        body = f"{rng.choice(reducers)}({body})"
    if rng.random() < 0.2:
        body = f"layersum({body})" if rng.random() < 0.5 else f"norm_avt({body})"
    return "\n".join(lines + [body]) + "\n"


MUTATION_CHARS = list("()+-*/<>=,.#_ \n\t0123456789eEWAGRxlt") + [
    "\u00a0",
    "\u2028",
    "\ufeff",
    "é",
    "\u0663",
    "\x00",
    "\x0b",
    "'",
    '"',
    "[",
    "]",
    ";",
    "\\",
    "let ",
    "%",
    "sum(",
    ")",
    "gram(",
    "1e999",
    "W + W",
    "\r",
]


def mutate(rng: random.Random, text: str, names: list[str]) -> tuple[str, str]:
    """``text`` with one to three random edits, and a short description of them."""
    edits = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["insert", "delete", "swap", "duplicate", "rename", "join"])
        if not text:
            op = "insert"
        i = rng.randrange(len(text) + 1)
        if op == "insert":
            c = rng.choice(MUTATION_CHARS)
            text = text[:i] + c + text[i:]
            edits.append(f"insert {c!r}@{i}")
        elif op == "delete":
            i = min(i, len(text) - 1)
            n = rng.choice([1, 1, 1, 2, 5])
            edits.append(f"delete {text[i : i + n]!r}@{i}")
            text = text[:i] + text[i + n :]
        elif op == "swap" and len(text) > 1:
            i = min(i, len(text) - 2)
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
            edits.append(f"swap@{i}")
        elif op == "duplicate":
            j = min(len(text), i + rng.randint(1, 20))
            text = text[:j] + text[i:j] + text[j:]
            edits.append(f"dup[{i}:{j}]")
        elif op == "rename":
            found = list(re.finditer(r"[A-Za-z_][A-Za-z_0-9]*", text))
            if found:
                m = rng.choice(found)
                new = rng.choice(names)
                text = text[: m.start()] + new + text[m.end() :]
                edits.append(f"{m.group()}->{new}")
        else:
            text = text.replace("\n", " ")
            edits.append("join lines")
    return text, ", ".join(edits)


def generated_cases(
    rng: random.Random,
    seeds: dict[str, str],
    prims: list[tuple[str, int, str | None, bool, bool]],
    inputs: list[str],
    count: int,
) -> list[Case]:
    """``count`` seeded cases: truncations and mutations of the examples, and random expressions."""
    if count <= 0:
        return []
    n_trunc, n_mut = count // 4, (count * 35) // 100
    n_rand = count - n_trunc - n_mut
    out: list[Case] = []
    cuts = [(name, i) for name, text in seeds.items() for i in range(0, len(text), 3)]
    for name, i in sorted(rng.sample(cuts, min(n_trunc, len(cuts)))):
        out.append(check_case("truncations", f"{name} cut at {i}", tok(seeds[name][:i])))
    n_rand += n_trunc - min(n_trunc, len(cuts))
    names = [p[0] for p in prims] + inputs + ["x", "c", "nwot", "let", "X", "inf"]
    pool = list(seeds.items())
    for _ in range(n_mut):
        name, text = rng.choice(pool)
        if rng.random() < 0.7:
            text = strip_comments(text)
        mutated, how = mutate(rng, text, names)
        out.append(check_case("mutations", f"{name}: {how}"[:100], tok(mutated)))
    for k in range(n_rand):
        text = random_proxy(rng, prims, inputs)
        out.append(check_case("random", f"random #{k}: {' '.join(text.split())}"[:100], tok(text)))
    for case in out:  # about one in ten through stdin
        if rng.random() < 0.1:
            case.argv, case.stdin, case.desc = ["check", "-"], "@FILE@", case.desc[:92] + " (stdin)"
    return out


def proxy_cases(seed: int, total: int) -> list[Case]:
    """Every Part 1 case: the hand-written ones, then generated ones up to ``total``."""
    rng = random.Random(seed)
    seeds = seed_texts()
    prims, inputs = primitive_table(), input_names()
    fixed = (
        encoding_cases(rng, seeds)
        + structure_cases(prims)
        + depth_cases()
        + literal_cases()
        + typing_cases(prims, inputs)
        + stdin_cases()
    )
    return fixed + generated_cases(rng, seeds, prims, inputs, total - len(fixed))


# -------------------------------------------------------------------------------- option cases


class Fixtures:
    """Paths of the files the option cases point at (created by :meth:`build`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        p = root / "opt"
        self.dir = p
        self.px = p / "l2_norm.px"
        self.px_ill = p / "ill.px"
        self.px_bin = p / "binary.px"
        self.binary = p / "binary.bin"
        self.missing = p / "no-such-file"
        self.afile = p / "a-file.txt"
        self.archs2 = p / "archs2.txt"
        self.archs2_macro = p / "archs2-macro.txt"
        self.archs_unknown = p / "archs-unknown.txt"
        self.archs_garbage = p / "archs-garbage.txt"
        self.archs_one = p / "archs-one.txt"
        self.archs_comments = p / "archs-comments.txt"
        self.bench = {
            k: p / f"bench-{k}_micro.json"
            for k in (
                "garbage",
                "list",
                "deep",
                "dup",
                "inf",
                "nan",
                "str",
                "bool",
                "noacc",
                "notask",
                "emptytask",
                "reclist",
                "badkey",
                "one",
                "big",
            )
        }
        self.data_empty = p / "data-empty"
        self.data_garbage = p / "data-garbage"
        self.images_empty = p / "images-empty"
        self.images_bin = p / "images-binary"
        self.toml = {name: p / f"cfg-{name}.toml" for name in TOMLS}
        self.arch = p / "arch.json"
        self.arch_bad = {
            k: p / f"arch-{k}.json"
            for k in ("garbage", "empty", "list", "deep", "binary", "types", "null", "format")
        }
        self.ckpt = p / "model.pt"
        self.ckpt_garbage = p / "garbage.pt"
        self.camvid = p / "camvid"
        self.existing = p / "existing-file"
        self.latency_garbage = p / "latency-garbage.json"
        self.search_ckpt_garbage = p / "search-garbage.json"
        self.notes: list[str] = []

    def sub(self, *parts: str) -> Path:
        """A fresh path under the work folder (not created)."""
        return self.dir.joinpath(*parts)

    def build(self) -> None:
        """Write every fixture; a fixture whose project API is missing is noted and written as a stub."""
        self.dir.mkdir(parents=True, exist_ok=True)
        rng = random.Random(1)
        blob = b"\x89PNG\r\n\x1a\n" + rng.randbytes(256)
        self.px.write_text((REPO / "examples" / "l2_norm.px").read_text())
        self.px_ill.write_text("sum(A + W)\n")
        self.px_bin.write_bytes(blob)
        self.binary.write_bytes(blob)
        self.afile.write_text("just a file\n")
        self.existing.write_text("already here\n")
        micro = json.loads((Path(DATA) / "transnas" / "zc_transbench101_micro.json").read_text())[
            "segmentsemantic"
        ]
        macro = json.loads((Path(DATA) / "transnas" / "zc_transbench101_macro.json").read_text())[
            "segmentsemantic"
        ]
        keys = list(micro)
        self.archs2.write_text(f"# two archs\n{keys[0]}\n{keys[1]}\n")
        self.archs2_macro.write_text("\n".join(list(macro)[:2]) + "\n")
        self.archs_unknown.write_text(f"{keys[0]}\n(9, 9, 9, 9, 9, 9)\n")
        self.archs_garbage.write_text("hello world\n")
        self.archs_one.write_text(f"{keys[0]}\n")
        self.archs_comments.write_text("# nothing here\n\n   # still nothing\n")
        recs = {k: micro[k] for k in keys[:3]}

        def bench(name: str, doc: Any) -> None:
            self.bench[name].write_text(doc if isinstance(doc, str) else json.dumps(doc, allow_nan=True))

        def with_acc(value: Any) -> dict[str, Any]:
            first = dict(recs[keys[0]], val_accuracy=value)
            return {"segmentsemantic": {keys[0]: first, **{k: recs[k] for k in keys[1:3]}}}

        bench("garbage", '{"segmentsemantic": {')
        bench("list", "[1, 2, 3]")
        bench("deep", "[" * 100_000 + "]" * 100_000)
        spelled = keys[0].replace(" ", "")
        bench("dup", {"segmentsemantic": {**recs, spelled: recs[keys[0]]}})
        bench("inf", with_acc(float("inf")))
        bench("nan", with_acc(float("nan")))
        bench("str", with_acc("93.1"))
        bench("bool", with_acc(True))
        noacc = {k: {kk: vv for kk, vv in v.items() if kk != "val_accuracy"} for k, v in recs.items()}
        bench("noacc", {"segmentsemantic": noacc})
        bench("notask", {"class_scene": recs})
        bench("emptytask", {"segmentsemantic": {}})
        bench("reclist", {"segmentsemantic": {keys[0]: [1, 2]}})
        bench("badkey", {"segmentsemantic": {"hello": recs[keys[0]]}})
        bench("one", {"segmentsemantic": {keys[0]: recs[keys[0]]}})
        bench("big", with_acc(1e400))
        self.data_empty.mkdir(exist_ok=True)
        (self.data_garbage / "transnas").mkdir(parents=True, exist_ok=True)
        (self.data_garbage / "transnas" / "zc_transbench101_micro.json").write_bytes(blob)
        self.images_empty.mkdir(exist_ok=True)
        self.images_bin.mkdir(exist_ok=True)
        (self.images_bin / "a.png").write_bytes(blob)
        (self.images_bin / "b.png").write_bytes(blob[::-1])
        for name, text in TOMLS.items():
            self.toml[name].write_bytes(text if isinstance(text, bytes) else text.encode())
        self._resume_dirs()
        self._segsearch(rng, blob)

    def _resume_dirs(self) -> None:
        """Run folders for ``evolve --resume``: run.json garbage, a folder, or valid with a bad checkpoint."""
        runjson = "{}"
        try:
            import tomllib

            from proxylang.search.run import resolve_settings, settings_json

            settings = resolve_settings("micro", tomllib.loads(toml_text({})), {})
            runjson = json.dumps(settings_json(settings), indent=2)
        except Exception as exc:  # the project's API moved: the garbage cases still work
            self.notes.append(f"run.json for resume cases not computed ({type(exc).__name__}: {exc})")
        for name, run, ckpt in (
            ("garbage", "{not json", None),
            ("null", "null", None),
            ("list", "[]", None),
            ("dir", None, None),
            ("ckpt-garbage", runjson, "{not json"),
            ("ckpt-list", runjson, "[]"),
            ("ckpt-empty", runjson, ""),
            ("ckpt-object", runjson, '{"generation": "x"}'),
            ("ckpt-dir", runjson, None),
        ):
            folder = self.dir / f"resume-{name}"
            folder.mkdir(exist_ok=True)
            if run is None:
                (folder / "run.json").mkdir(exist_ok=True)
            else:
                (folder / "run.json").write_text(run)
            if name.startswith("ckpt"):
                (folder / "evolution").mkdir(exist_ok=True)
                target = folder / "evolution" / "checkpoint.json"
                if ckpt is None:
                    target.mkdir(exist_ok=True)
                else:
                    target.write_text(ckpt)

    def _segsearch(self, rng: random.Random, blob: bytes) -> None:
        """A valid arch.json and checkpoint, broken ones, and a tiny CamVid-layout dataset."""
        try:
            from segsearch.space import random_arch, save_arch

            arch = random_arch(random.Random(0))
            save_arch(arch, self.arch)
            arch_dict = json.loads(self.arch.read_text())
        except Exception as exc:
            self.notes.append(f"arch.json not built ({type(exc).__name__}: {exc})")
            arch_dict, arch = {}, None
            self.arch.write_text("{}")
        for name, text in (
            ("garbage", "{"),
            ("empty", "{}"),
            ("list", "[]"),
            ("deep", "[" * 100_000 + "]" * 100_000),
            ("types", json.dumps({**arch_dict, "alpha": "x", "beta": 1, "ratio": None})),
            ("null", "null"),
            ("format", json.dumps({**arch_dict, "format": 7})),
        ):
            self.arch_bad[name].write_text(text)
        self.arch_bad["binary"].write_bytes(blob)
        self.ckpt_garbage.write_bytes(blob)
        self.latency_garbage.write_text("{not json")
        self.search_ckpt_garbage.write_text("{not json")
        try:
            from segsearch.network import build_network
            from segsearch.train import save_checkpoint

            save_checkpoint(self.ckpt, build_network(arch, 11, "student"), "camvid", 1, 0.0)
        except Exception as exc:
            self.notes.append(f"checkpoint not built ({type(exc).__name__}: {exc})")
            self.ckpt.write_bytes(blob)
        try:
            from PIL import Image

            for split, n in (("train", 2), ("val", 1)):
                (self.camvid / split).mkdir(parents=True, exist_ok=True)
                (self.camvid / f"{split}annot").mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    img = Image.frombytes("RGB", (16, 16), rng.randbytes(16 * 16 * 3))
                    img.save(self.camvid / split / f"{i}.png")
                    lab = Image.frombytes("L", (16, 16), bytes(rng.randrange(12) for _ in range(256)))
                    lab.save(self.camvid / f"{split}annot" / f"{i}.png")
        except Exception as exc:
            self.notes.append(f"camvid dataset not built ({type(exc).__name__}: {exc})")


SMALL: dict[str, dict[str, str]] = {
    "": {"space": '"micro"', "strategy": '"evolution"', "ensemble_with": '["nwot"]'},
    "data": {
        "train": "8",
        "val": "4",
        "holdout": "4",
        "presample": "2",
        "resolution": "16",
        "batch": "4",
        "thin": "2",
        "max_seconds": "2.0",
        "seed": "0",
    },
    "search": {
        "population": "6",
        "iterations": "1",
        "offspring": "4",
        "pool": "4",
        "top_k": "2",
        "seed": "0",
    },
}


def toml_text(changes: dict[str, dict[str, str | None] | None]) -> str:
    """The seconds-long config of examples/evolve_small.toml (one strategy, one iteration) with
    ``changes``: ``{table: {key: raw TOML value, or None to drop it}}``, a table mapped to None is dropped."""
    lines: list[str] = []
    for table, values in SMALL.items():
        if table in changes and changes[table] is None:
            continue
        merged: dict[str, str | None] = {**values, **(changes.get(table) or {})}
        if table:
            lines.append(f"\n[{table}]")
        lines += [f"{k} = {v}" for k, v in merged.items() if v is not None]
    for table, values in changes.items():
        if table not in SMALL and values is not None:
            lines.append(f"\n[{table}]")
            lines += [f"{k} = {v}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


TOMLS: dict[str, str | bytes] = {
    "small": toml_text({}),
    "population-2.5": toml_text({"search": {"population": "2.5"}}),
    "population-true": toml_text({"search": {"population": "true"}}),
    "population-nan": toml_text({"search": {"population": "nan"}}),
    "population-huge": toml_text({"search": {"population": str(10**12)}}),
    "population-string": toml_text({"search": {"population": '"20"'}}),
    "iterations-neg": toml_text({"search": {"iterations": "-1"}}),
    "iterations-float": toml_text({"search": {"iterations": "1.5"}}),
    "crossover-string": toml_text({"search": {"crossover_prob": '"x"'}}),
    "crossover-nan": toml_text({"search": {"crossover_prob": "nan"}}),
    "patience-0": toml_text({"search": {"patience": "0"}}),
    "seed-string": toml_text({"search": {"seed": '"x"'}}),
    "seed-neg": toml_text({"search": {"seed": "-1"}}),
    "seed-huge": toml_text({"search": {"seed": str(2**64)}}),
    "variation-bad": toml_text({"search": {"variation": '"xor"'}}),
    "search-unknown": toml_text({"search": {"populaton": "6"}}),
    "search-nested": toml_text({"search.extra": {"x": "1"}}),
    "search-3": toml_text({"search": None, "": {"search": "3"}}),
    "search-list": toml_text({"search": None, "": {"search": "[1, 2]"}}),
    "data-3": toml_text({"data": None, "": {"data": "3"}}),
    "start-with-3": toml_text({"": {"start_with": "3"}}),
    "start-with-string": toml_text({"": {"start_with": '"nwot"'}}),
    "start-with-unknown": toml_text({"": {"start_with": '["nope"]'}}),
    "start-with-nested": toml_text({"": {"start_with": '[["nwot"]]'}}),
    "ensemble-3": toml_text({"": {"ensemble_with": "3"}}),
    "strategy-3": toml_text({"": {"strategy": "3"}}),
    "strategy-list": toml_text({"": {"strategy": '["evolution"]'}}),
    "space-other": toml_text({"": {"space": '"macro"'}}),
    "space-3": toml_text({"": {"space": "3"}}),
    "unknown-top": toml_text({"": {"populaton": "6"}}),
    "max-seconds-x": toml_text({"data": {"max_seconds": '"x"'}}),
    "max-seconds-neg": toml_text({"data": {"max_seconds": "-1.0"}}),
    "max-seconds-nan": toml_text({"data": {"max_seconds": "nan"}}),
    "stats-seed-neg": toml_text({"data": {"stats_seed": "-1"}}),
    "stats-seed-huge": toml_text({"data": {"stats_seed": str(2**64)}}),
    "split-seed-neg": toml_text({"data": {"seed": "-1"}}),
    "train-string": toml_text({"data": {"train": '"8"'}}),
    "train-float": toml_text({"data": {"train": "8.5"}}),
    "holdout-huge": toml_text({"data": {"holdout": "1000000"}}),
    "resolution-huge": toml_text({"data": {"resolution": str(10**9)}}),
    "batch-huge": toml_text({"data": {"batch": str(10**9)}}),
    "resolution-float": toml_text({"data": {"resolution": "16.5"}}),
    "profile-3": toml_text({"data": {"profile": "3"}}),
    "profile-nope": toml_text({"data": {"profile": '"nope"'}}),
    "thin-huge": toml_text({"data": {"thin": str(10**12)}}),
    "data-unknown": toml_text({"data": {"trian": "8"}}),
    "invalid": "population = \n[search\n",
    "duplicate-key": toml_text({}) + "\n[search]\npopulation = 7\n",
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
    "bom": "\ufeff" + toml_text({}),
    "utf16": toml_text({}).encode("utf-16"),
    "deep-array": "x = " + "[" * 100_000 + "]" * 100_000 + "\n",
    "deep-inline": "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n",
}


def option_cases(fx: Fixtures, jobs_root: Path) -> list[Case]:
    """Every Part 2 case (real subprocesses)."""
    out: list[Case] = []
    counter = iter(range(10**6))

    def add(
        category: str,
        desc: str,
        argv: list[str | Path],
        program: str = "proxylang",
        env: dict[str, str] | None = None,
        stdin: str = "devnull",
        factor: float = 1.0,
    ) -> None:
        out.append(
            Case(
                "options",
                category,
                desc,
                [str(a) for a in argv],
                program=program,
                env=env or {},
                stdin=stdin,
                timeout_factor=factor,
            )
        )

    def fresh(kind: str) -> Path:
        return jobs_root / f"{kind}-{next(counter)}"

    px, ex = fx.px, str(REPO / "examples" / "nwot.px")
    # --- proxylang, global options and check/show
    add("control", "proxylang check (valid)", ["check", px])
    for value in ("0", "-1", "abc", "99999", ""):
        add("proxylang", f"--threads {value!r}", ["--threads", value, "check", px])
    for value in ("abc", "0", "-3", "1e3"):
        add("env", f"PROXYLANG_THREADS={value}", ["check", px], env={"PROXYLANG_THREADS": value})
    add("proxylang", "unknown command", ["nope"])
    add("proxylang", "unknown global option", ["--bogus", "check", px])
    add("proxylang", "check with two files", ["check", px, px])
    add(
        "proxylang",
        "show --graph into a missing folder",
        ["show", ex, "--graph", fx.sub("no", "dir", "g.png")],
    )
    add("proxylang", "show --graph with an unknown extension", ["show", ex, "--graph", fx.sub("g.xyz")])
    add("proxylang", "show --graph .png (needs Graphviz)", ["show", ex, "--graph", fx.sub("g.png")])
    add("proxylang", "show --graph ''", ["show", ex, "--graph", ""])
    add("proxylang", "show --graph a folder", ["show", ex, "--graph", fx.dir])
    add("proxylang", "show --graph under a regular file", ["show", ex, "--graph", fx.afile / "g.dot"])
    add("proxylang", "show --latex of a binary file", ["show", "--latex", fx.px_bin])

    # --- eval: a tiny valid base, the hostile value appended (click keeps the last occurrence)
    base = [
        "eval",
        px,
        "--space",
        "micro",
        "--archs",
        fx.archs2,
        "--resolution",
        "32",
        "--batch-size",
        "2",
        "--sample",
        "2",
        "--repeats",
        "1",
        "--device",
        "cpu",
    ]
    add("control", "eval on 2 archs (valid)", base, factor=3)
    hostile: list[tuple[str, list[str | Path]]] = [
        ("--seed -1", ["--seed", "-1"]),
        ("--seed 2**64", ["--seed", str(2**64)]),
        ("--seed abc", ["--seed", "abc"]),
        ("--seed 2**32", ["--seed", str(2**32)]),
        ("--resolution 0", ["--resolution", "0"]),
        ("--resolution -1", ["--resolution", "-1"]),
        ("--resolution 10**9", ["--resolution", str(10**9)]),
        ("--resolution 3", ["--resolution", "3"]),
        ("--batch-size 0", ["--batch-size", "0"]),
        ("--batch-size -1", ["--batch-size", "-1"]),
        ("--batch-size 10**9", ["--batch-size", str(10**9)]),
        ("--batch-size 1", ["--batch-size", "1"]),
        ("--sample 0", ["--sample", "0"]),
        ("--sample -1", ["--sample", "-1"]),
        ("--sample 1", ["--sample", "1"]),
        ("--repeats 0", ["--repeats", "0"]),
        ("--repeats -1", ["--repeats", "-1"]),
        ("--repeats 10**9", ["--repeats", str(10**9)]),
        ("--device tpu", ["--device", "tpu"]),
        ("--device meta", ["--device", "meta"]),
        ("--device cuda:7", ["--device", "cuda:7"]),
        ("--device ''", ["--device", ""]),
        ("--device cuda:-1", ["--device", "cuda:-1"]),
        ("--device mps", ["--device", "mps"]),
        ("--profile nope", ["--profile", "nope"]),
        ("--space nope", ["--space", "nope"]),
        ("--bench nope", ["--bench", "nope"]),
        ("--archs missing file", ["--archs", fx.missing]),
        ("--archs binary file", ["--archs", fx.binary]),
        ("--archs unknown arch key", ["--archs", fx.archs_unknown]),
        ("--archs garbage line", ["--archs", fx.archs_garbage]),
        ("--archs one arch", ["--archs", fx.archs_one]),
        ("--archs only comments", ["--archs", fx.archs_comments]),
        ("--archs a folder", ["--archs", fx.dir]),
        ("--archs /dev/zero", ["--archs", "/dev/zero"]),
        ("--archs macro keys for micro", ["--archs", fx.archs2_macro]),
        ("--data missing folder", ["--data", fx.missing]),
        ("--data a regular file", ["--data", fx.afile]),
        ("--data folder without transnas/", ["--data", fx.data_empty]),
        ("--data with a binary ground-truth file", ["--data", fx.data_garbage]),
        ("--images missing", ["--images", fx.missing]),
        ("--images empty folder", ["--images", fx.images_empty]),
        ("--images of non-images", ["--images", fx.images_bin]),
        ("--labels without --images", ["--labels", fx.images_bin]),
        ("--cache a regular file", ["--cache", fx.afile]),
        ("--cache under /proc", ["--cache", "/proc/hostile-cache"]),
        ("--scores-out a folder", ["--scores-out", fx.dir]),
        ("--against nope", ["--against", "nope"]),
        ("--against ''", ["--against", ""]),
    ]
    for name, path in fx.bench.items():
        hostile.append((f"--bench-file {name}", ["--bench-file", path]))
    hostile += [
        ("--bench-file a folder", ["--bench-file", fx.dir]),
        ("--bench-file /dev/null", ["--bench-file", "/dev/null"]),
        ("--bench-file binary", ["--bench-file", fx.binary]),
    ]
    for desc, extra in hostile:
        add("eval", desc, base + extra)
    add("eval", "--archs without --space", ["eval", px, "--archs", fx.archs2, "--device", "cpu"])
    add(
        "eval",
        "--bench-file without --space",
        ["eval", px, "--bench-file", fx.bench["one"], "--device", "cpu"],
    )
    add("eval", "binary proxy file", ["eval", fx.px_bin, *base[2:]])
    add("eval", "ill-typed proxy file", ["eval", fx.px_ill, *base[2:]])
    add("eval", "missing proxy file", ["eval", fx.missing, *base[2:]])
    add("eval", "proxy '-' twice from stdin", ["eval", "-", "-", *base[2:]], stdin=str(px))
    add("eval", "proxy '-' with stdin closed", ["eval", "-", *base[2:]], stdin="closed")
    add("env", "PROXYLANG_CACHE_GB=abc", base, env={"PROXYLANG_CACHE_GB": "abc"})
    add("env", "PROXYLANG_CACHE_GB=-1", base, env={"PROXYLANG_CACHE_GB": "-1"})
    add("env", "PROXYLANG_CACHE_GB=nan", base, env={"PROXYLANG_CACHE_GB": "nan"})
    add(
        "env",
        "PROXYLANG_DATA missing folder",
        ["eval", px, "--space", "micro", "--device", "cpu"],
        env={"PROXYLANG_DATA": str(fx.missing)},
    )
    add("env", "PROXYLANG_CACHE is a regular file", base, env={"PROXYLANG_CACHE": str(fx.afile)})

    # --- baselines
    bbase = [
        "baselines",
        "--space",
        "micro",
        "--archs",
        fx.archs2,
        "--only",
        "params",
        "--resolution",
        "32",
        "--batch-size",
        "2",
        "--sample",
        "2",
        "--repeats",
        "1",
        "--device",
        "cpu",
    ]
    add("control", "baselines --only params on 2 archs (valid)", bbase, factor=3)
    for desc, extra in [
        ("--only ''", ["--only", ""]),
        ("--only nope", ["--only", "nope"]),
        ("--only ','", ["--only", ","]),
        ("--only 'params,nope'", ["--only", "params,nope"]),
        ("--only ' '", ["--only", " "]),
        ("--format xml", ["--format", "xml"]),
        ("--seed -1", ["--seed", "-1"]),
        ("--resolution 0", ["--resolution", "0"]),
        ("--device tpu", ["--device", "tpu"]),
        ("--archs garbage line", ["--archs", fx.archs_garbage]),
        ("--bench-file list", ["--bench-file", fx.bench["list"]]),
        ("--sample 0", ["--sample", "0"]),
        ("--repeats 0", ["--repeats", "0"]),
        ("--profile nope", ["--profile", "nope"]),
    ]:
        add("baselines", desc, bbase + extra)

    # --- evolve
    def evolve(config: Path | None, *extra: str | Path, out: Path | None = None) -> list[str | Path]:
        argv: list[str | Path] = [
            "evolve",
            "--space",
            "micro",
            "--out",
            out or fresh("evolve"),
            "--workers",
            "1",
        ]
        return argv + (["--config", config] if config else []) + list(extra)

    add("control", "evolve with the small config (valid)", evolve(fx.toml["small"]), factor=6)
    for name in TOMLS:
        if name != "small":
            add("evolve-config", f"--config {name}", evolve(fx.toml[name]))
    small = fx.toml["small"]
    for desc, extra in [
        ("--population 0", ["--population", "0"]),
        ("--population -5", ["--population", "-5"]),
        ("--population 2.5", ["--population", "2.5"]),
        ("--population 10**12", ["--population", str(10**12)]),
        ("--iterations -1", ["--iterations", "-1"]),
        ("--seed -1", ["--seed", "-1"]),
        ("--seed 2**64", ["--seed", str(2**64)]),
        ("--workers 0", ["--workers", "0"]),
        ("--workers -1", ["--workers", "-1"]),
        ("--workers 300", ["--workers", "300"]),
        ("--strategy nope", ["--strategy", "nope"]),
        ("--profile nope", ["--profile", "nope"]),
        ("--space nope", ["--space", "nope"]),
        ("--bench nope", ["--bench", "nope"]),
        ("--config missing", ["--config", fx.missing]),
        ("--config a folder", ["--config", fx.dir]),
        ("--config /dev/zero", ["--config", "/dev/zero"]),
        ("--data missing folder", ["--data", fx.missing]),
        ("--cache a regular file", ["--cache", fx.afile]),
    ]:
        add("evolve-options", desc, evolve(small, *extra))
    add("evolve-options", "--out an existing file", evolve(small, out=fx.existing))
    add("evolve-options", "--out under /dev/null", evolve(small, out=Path("/dev/null/run")))
    add("evolve-options", "--out under a regular file", evolve(small, out=fx.afile / "run"))
    add("evolve-options", "--out under /proc", evolve(small, out=Path("/proc/hostile-run")))
    add("evolve-resume", "--resume, no run folder", evolve(small, "--resume", out=fx.missing))
    for name in (
        "garbage",
        "null",
        "list",
        "dir",
        "ckpt-garbage",
        "ckpt-list",
        "ckpt-empty",
        "ckpt-object",
        "ckpt-dir",
    ):
        what = {
            "garbage": "run.json garbage",
            "null": "run.json null",
            "list": "run.json a list",
            "dir": "run.json a folder",
        }.get(name, f"valid run.json, checkpoint.json {name[5:]}")
        add(
            "evolve-resume",
            f"--resume, {what}",
            evolve(small, "--resume", out=fx.sub(f"resume-{name}")),
            factor=2,
        )

    # --- segsearch
    sbase = [
        "search",
        "--proxy",
        px,
        "--population",
        "2",
        "--generations",
        "0",
        "--parents",
        "1",
        "--calibration",
        "2",
        "--resolution",
        "16x32",
        "--batch-size",
        "2",
        "--compare-random",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]

    def seg(*extra: str | Path) -> list[str | Path]:
        return [*sbase, "--out", fresh("seg") / "arch.json", *extra]

    add("control", "segsearch search, 2 candidates (valid)", seg(), program="segsearch", factor=3)
    for desc, extra in [
        ("--num-classes 0", ["--num-classes", "0"]),
        ("--num-classes -1", ["--num-classes", "-1"]),
        ("--proxy binary", ["--proxy", fx.px_bin]),
        ("--proxy missing", ["--proxy", fx.missing]),
        ("--proxy a folder", ["--proxy", fx.dir]),
        ("--proxy ill-typed", ["--proxy", fx.px_ill]),
        ("--proxy /dev/zero", ["--proxy", "/dev/zero"]),
        ("--resolution 0x0", ["--resolution", "0x0"]),
        ("--resolution 8", ["--resolution", "8"]),
        ("--resolution axb", ["--resolution", "axb"]),
        ("--resolution 10**9x10**9", ["--resolution", f"{10**9}x{10**9}"]),
        ("--resolution 9x9 (not a multiple of 8)", ["--resolution", "9x9"]),
        ("--batch-size 0", ["--batch-size", "0"]),
        ("--batch-size -1", ["--batch-size", "-1"]),
        ("--population 0", ["--population", "0"]),
        ("--parents 0", ["--parents", "0"]),
        ("--generations -1", ["--generations", "-1"]),
        ("--calibration 0", ["--calibration", "0"]),
        ("--seed -1", ["--seed", "-1"]),
        ("--seed 2**64", ["--seed", str(2**64)]),
        ("--target-fps 0", ["--target-fps", "0"]),
        ("--target-fps -1", ["--target-fps", "-1"]),
        ("--target-fps nan", ["--target-fps", "nan"]),
        ("--latency-size 0x0", ["--latency-size", "0x0"]),
        (
            "--latency-table garbage",
            ["--target-fps", "10", "--latency-size", "32x64", "--latency-table", fx.latency_garbage],
        ),
        (
            "--latency-table a folder",
            ["--target-fps", "10", "--latency-size", "32x64", "--latency-table", fx.dir],
        ),
        ("--compare-random -1", ["--compare-random", "-1"]),
        ("--device tpu", ["--device", "tpu"]),
        ("--device cuda:7", ["--device", "cuda:7"]),
        ("--threads 0", ["--threads", "0"]),
        ("--resume with a garbage checkpoint", ["--resume", "--checkpoint", fx.search_ckpt_garbage]),
        ("--resume without a checkpoint", ["--resume", "--checkpoint", fx.missing]),
    ]:
        add("segsearch-search", desc, seg(*extra), program="segsearch")
    add("segsearch-search", "--out an existing folder", [*sbase, "--out", fx.dir], program="segsearch")

    lbase = [
        "latency",
        fx.arch,
        "--size",
        "32x64",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--warmup",
        "0",
        "--repeats",
        "1",
    ]
    add("control", "segsearch latency at 32x64 (valid)", lbase, program="segsearch")
    for desc, extra in [
        ("--repeats 0", ["--repeats", "0"]),
        ("--repeats -1", ["--repeats", "-1"]),
        ("--warmup -1", ["--warmup", "-1"]),
        ("--size 0x0", ["--size", "0x0"]),
        ("--size 1x1", ["--size", "1x1"]),
        ("--size 10**9x10**9", ["--size", f"{10**9}x{10**9}"]),
        ("--num-classes 0", ["--num-classes", "0"]),
        ("--num-classes -1", ["--num-classes", "-1"]),
        ("--fp16 on a CPU", ["--fp16"]),
        ("--device meta", ["--device", "meta"]),
        ("--role nope", ["--role", "nope"]),
        ("--threads 0", ["--threads", "0"]),
        ("--predict with a garbage table", ["--predict", "--latency-table", fx.latency_garbage]),
    ]:
        add("segsearch-latency", desc, lbase + extra, program="segsearch")
    for name, path in fx.arch_bad.items():
        add("segsearch-latency", f"arch.json {name}", ["latency", path, *lbase[2:]], program="segsearch")
    for desc, path in (("missing", fx.missing), ("a folder", fx.dir), ("/dev/zero", Path("/dev/zero"))):
        add("segsearch-latency", f"arch.json {desc}", ["latency", path, *lbase[2:]], program="segsearch")

    def train(out: Path | None = None, arch: Path | None = None) -> list[str | Path]:
        return [
            "train",
            arch or fx.arch,
            "--dataset",
            "camvid",
            "--data-root",
            fx.camvid,
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--size",
            "16x16",
            "--out",
            out or fresh("train"),
            "--device",
            "cpu",
        ]

    add(
        "control", "segsearch train 1 epoch on 2 16x16 images (valid)", train(), program="segsearch", factor=3
    )
    for desc, extra in [
        ("--workers -1", ["--workers", "-1"]),
        ("--epochs 0", ["--epochs", "0"]),
        ("--lr 0", ["--lr", "0"]),
        ("--lr nan", ["--lr", "nan"]),
        ("--lr-decay -1", ["--lr-decay", "-1"]),
        ("--kd-weight nan", ["--kd-weight", "nan"]),
        ("--size 0x0", ["--size", "0x0"]),
        ("--batch-size 0", ["--batch-size", "0"]),
        ("--dataset nope", ["--dataset", "nope"]),
        ("--data-root missing", ["--data-root", fx.missing]),
        ("--data-root without the CamVid layout", ["--data-root", fx.dir]),
        ("--teacher garbage", ["--teacher", fx.ckpt_garbage]),
        ("--teacher a folder", ["--teacher", fx.dir]),
        ("--dataset cityscapes on a CamVid folder", ["--dataset", "cityscapes"]),
        ("--seed -1", ["--seed", "-1"]),
    ]:
        add("segsearch-train", desc, train() + extra, program="segsearch")
    add("segsearch-train", "--out an existing file", train(out=fx.existing), program="segsearch")
    add("segsearch-train", "garbage arch.json", train(arch=fx.arch_bad["garbage"]), program="segsearch")

    ebase = [
        "eval",
        fx.ckpt,
        "--dataset",
        "camvid",
        "--data-root",
        fx.camvid,
        "--size",
        "16x16",
        "--batch-size",
        "2",
        "--device",
        "cpu",
    ]
    add("control", "segsearch eval of a fresh checkpoint (valid)", ebase, program="segsearch")
    for desc, argv in [
        ("garbage checkpoint", ["eval", fx.ckpt_garbage, *ebase[2:]]),
        ("missing checkpoint", ["eval", fx.missing, *ebase[2:]]),
        ("checkpoint is a folder", ["eval", fx.dir, *ebase[2:]]),
        ("checkpoint is an arch.json", ["eval", fx.arch, *ebase[2:]]),
        ("--batch-size 0", ebase + ["--batch-size", "0"]),
        ("--batch-size -1", ebase + ["--batch-size", "-1"]),
        ("--split nope", ebase + ["--split", "nope"]),
        ("--size 0x0", ebase + ["--size", "0x0"]),
        ("--size 1x1", ebase + ["--size", "1x1"]),
        ("--device tpu", ebase + ["--device", "tpu"]),
    ]:
        add("segsearch-eval", desc, argv, program="segsearch")
    add("segsearch", "unknown command", ["nope"], program="segsearch")

    # --- memory and cache budgets (appended last, so the numbers of the cases above stay the same)
    for value in ("inf", "1e400", "-inf"):
        add("env", f"PROXYLANG_CACHE_GB={value}", base, env={"PROXYLANG_CACHE_GB": value})
    for value in ("abc", "0", "inf", "nan", "1e-12"):
        add("env", f"PROXYLANG_MEMORY_GB={value}", base, env={"PROXYLANG_MEMORY_GB": value})
    for value in ("0", "-1", "nan", "inf", "1e-9"):
        add("proxylang", f"--memory-budget {value} (eval)", ["--memory-budget", value, *base])
    for value in ("nan", "1e-9"):
        add(
            "segsearch",
            f"--memory-budget {value} (search)",
            ["--memory-budget", value, *seg()],
            program="segsearch",
        )
    add(
        "segsearch",
        "PROXYLANG_MEMORY_GB=1e-12 (latency)",
        lbase,
        program="segsearch",
        env={"PROXYLANG_MEMORY_GB": "1e-12"},
    )
    return out


# --------------------------------------------------------------------------------- running


def specials(root: Path) -> dict[str, Path]:
    """Paths of the special files (FIFO, folder, links, sparse files); created by :func:`make_specials`."""
    s = root / "special"
    return {
        "fifo": s / "fifo",
        "dir": s / "folder",
        "regular": s / "regular",
        "loop": s / "loop",
        "dangling": s / "dangling",
        "noread": s / "noread.px",
        "sparse100": s / "sparse-100MB.px",
        "sparse63": s / "sparse-63MiB.px",
        "sparse64p1": s / "sparse-64MiB+1.px",
    }


def make_specials(root: Path) -> None:
    """Create the special files; the sparse ones hold a valid proxy then a hole (read as NUL bytes)."""
    paths = specials(root)
    paths["dir"].mkdir(parents=True, exist_ok=True)
    os.mkfifo(paths["fifo"])
    paths["regular"].write_text("sum(W)\n")
    os.symlink(paths["loop"], paths["loop"])
    os.symlink(root / "special" / "nowhere", paths["dangling"])
    paths["noread"].write_text("sum(W)\n")
    paths["noread"].chmod(0)
    for key, size in (("sparse100", 100_000_000), ("sparse63", 63 << 20), ("sparse64p1", (64 << 20) + 1)):
        with open(paths[key], "wb") as f:
            f.write(b"sum(W)\n")
            f.truncate(size)


def drop_sparse(root: Path) -> None:
    """Delete the large sparse files."""
    for key in ("sparse100", "sparse63", "sparse64p1"):
        specials(root)[key].unlink(missing_ok=True)


def resolve(text: str, root: Path, file: Path | None) -> str:
    """``text`` with ``@W@``, ``@FILE@`` and ``@S:name@`` replaced by paths."""
    if "@" not in text:
        return text
    for key, path in specials(root).items():
        text = text.replace(f"@S:{key}@", str(path))
    text = text.replace("@W@", str(root))
    return text.replace("@FILE@", str(file)) if file is not None else text


def case_file(case: Case, root: Path) -> Path | None:
    """Write the case's text to its file (named by ``filename`` when set); returns the path."""
    if case.text is None:
        return None
    folder = root / "p" / f"{case.index:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), case.filename or b"proxy.px")))
    path.write_bytes(case.text)
    return path


def command_of(case: Case) -> list[str]:
    """The real command line of ``case`` (the console script, else ``python -m``)."""
    beside = Path(sys.executable).parent / case.program  # the real script, not a version manager's shim
    script = str(beside) if os.access(beside, os.X_OK) else shutil.which(case.program)
    if script:
        return [script]
    if case.program == "proxylang":
        return [sys.executable, "-m", "proxylang"]
    return [sys.executable, "-c", "import sys; from segsearch.cli import main; sys.exit(main())"]


def read_capped(path: Path) -> str:
    """A capture file as text (head and tail when huge)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size <= MAX_READ:
            data = f.read()
        else:
            head = f.read(MAX_READ // 2)
            f.seek(size - MAX_READ // 2)
            data = head + b"\n[... cut ...]\n" + f.read()
    return data.decode("utf-8", "replace")


def set_limits(memory_gb: float) -> None:
    """Cap the address space of a case (a runaway read of /dev/zero must not take the machine)."""
    if memory_gb > 0:
        limit = int(memory_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Runner:
    """Runs cases ``jobs`` at a time, in forked children (``fork``) or real subprocesses, with a timeout."""

    def __init__(self, root: Path, jobs: int, timeout: float, memory_gb: float, env: dict[str, str]) -> None:
        self.root, self.jobs, self.timeout, self.memory_gb, self.env = root, jobs, timeout, memory_gb, env
        self.captures = root / "captures"
        self.captures.mkdir(parents=True, exist_ok=True)
        self.cli: Any = None

    def run(self, cases: list[Case], fork: bool, progress: str = "") -> list[Result]:
        """Every case, in order of the returned list."""
        if fork and self.cli is None:
            self.cli = load_cli()
        pending = list(cases)[::-1]
        running: dict[int, tuple[Case, float, Any, bool]] = {}
        done: dict[int, Result] = {}
        last_shown = time.monotonic()
        while pending or running:
            while pending and len(running) < self.jobs:
                case = pending.pop()
                handle = self._start_fork(case) if fork else self._start_process(case)
                running[case.index] = (case, time.monotonic(), handle, False)
            time.sleep(0.003)
            for index, (case, start, handle, aborted) in list(running.items()):
                status = self._poll(handle, fork)
                elapsed = time.monotonic() - start
                limit = self.timeout * case.timeout_factor
                if status is None and elapsed > limit and not aborted:
                    self._signal(handle, fork, signal.SIGABRT, group=False)  # faulthandler prints the stack
                    running[index] = (case, start, handle, True)
                elif status is None and aborted and elapsed > limit + 3:
                    self._signal(handle, fork, signal.SIGKILL, group=True)
                    self._wait(handle, fork)
                    status = -signal.SIGKILL
                if status is not None:
                    del running[index]
                    done[index] = self._result(case, None if aborted else status, time.monotonic() - start)
            if progress and time.monotonic() - last_shown > 10:
                last_shown = time.monotonic()
                print(f"  {progress}: {len(done)}/{len(cases)} done", file=sys.stderr, flush=True)
        return [done[c.index] for c in cases]

    def _paths(self, case: Case) -> tuple[Path, Path]:
        return self.captures / f"{case.index:05d}.out", self.captures / f"{case.index:05d}.err"

    def _stdin_path(self, case: Case, file: Path | None) -> str | None:
        if case.stdin == "closed":
            return None
        if case.stdin == "devnull":
            return os.devnull
        return resolve(case.stdin, self.root, file)

    def _start_fork(self, case: Case) -> int:
        file = case_file(case, self.root)
        argv = [resolve(a, self.root, file) for a in case.argv]
        stdin = self._stdin_path(case, file)
        out, err = self._paths(case)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            child_main(self.cli[case.program], case.program, argv, stdin, out, err, case.env, self.memory_gb)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        return pid

    def _start_process(self, case: Case) -> subprocess.Popen[bytes]:
        file = case_file(case, self.root)
        argv = command_of(case) + [resolve(a, self.root, file) for a in case.argv]
        stdin_path = self._stdin_path(case, file)
        out, err = self._paths(case)
        env = {**self.env, **case.env}
        closed = stdin_path is None

        def prepare() -> None:
            set_limits(self.memory_gb)
            if closed:
                os.close(0)

        with open(out, "wb") as fo, open(err, "wb") as fe:
            stdin = None if closed else os.open(stdin_path, os.O_RDONLY)
            try:
                return subprocess.Popen(
                    argv,
                    stdin=stdin,
                    stdout=fo,
                    stderr=fe,
                    env=env,
                    cwd=self.root,
                    start_new_session=True,
                    preexec_fn=prepare,
                )
            finally:
                if stdin is not None:
                    os.close(stdin)

    @staticmethod
    def _poll(handle: Any, fork: bool) -> int | None:
        if not fork:
            return handle.poll()
        pid, status = os.waitpid(handle, os.WNOHANG)
        return None if pid == 0 else os.waitstatus_to_exitcode(status)

    @staticmethod
    def _wait(handle: Any, fork: bool) -> None:
        if fork:
            os.waitpid(handle, 0)
        else:
            handle.wait()

    @staticmethod
    def _signal(handle: Any, fork: bool, sig: int, group: bool) -> None:
        pid = handle if fork else handle.pid
        try:
            os.killpg(pid, sig) if group else os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _result(self, case: Case, code: int | None, seconds: float) -> Result:
        out, err = self._paths(case)
        stdout, stderr = read_capped(out), read_capped(err)
        out.unlink(missing_ok=True)
        err.unlink(missing_ok=True)
        folder = self.root / "p" / f"{case.index:05d}"
        if folder.exists() and not KEEP_INPUTS:
            shutil.rmtree(folder, ignore_errors=True)
        if code is not None and code < 0:
            stderr += f"\n[killed by signal {signal.Signals(-code).name}]"
        return Result(case, classify(code, stderr), code, seconds, stderr, stdout)


KEEP_INPUTS = False


def load_cli() -> dict[str, Any]:
    """The command groups, imported once (and the proxy parser built once) before any fork."""
    from proxylang.cli.main import main as proxylang_main

    try:
        from proxylang.lang.check import check
        from proxylang.lang.parse import parse

        check(parse("slogdet(layersum(gram(R > 0)))"))
    except Exception:  # warming up is optional
        pass
    return {"proxylang": proxylang_main}


def child_main(
    group: Any,
    program: str,
    argv: list[str],
    stdin: str | None,
    out: Path,
    err: Path,
    env: dict[str, str],
    memory_gb: float,
) -> None:
    """In a forked child: redirect stdio, run the command group as its console script would, ``_exit``."""
    code = 1
    try:
        os.setpgid(0, 0)
        set_limits(memory_gb)
        fd_out = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        fd_err = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd_out, 1)
        os.dup2(fd_err, 2)
        os.close(fd_out)
        os.close(fd_err)
        if stdin is None:
            os.close(0)
            sys.stdin = None  # what Python sets when it starts with fd 0 closed
        else:
            fd_in = os.open(stdin, os.O_RDONLY)
            os.dup2(fd_in, 0)
            os.close(fd_in)
            sys.stdin = open(0, closefd=False)  # noqa: SIM115  a fresh reader: nothing buffered from before
        os.environ.update(env)
        import faulthandler

        faulthandler.enable(file=sys.stderr)
        group.main(args=argv, prog_name=program)
        code = 0
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            if sys.stdout is not None:
                sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


# --------------------------------------------------------------------------------- reporting


FRAME = re.compile(r'File "([^"]+)", line (\d+),? in (\S+)')


def signature(result: Result) -> str:
    """What a failure is about: the innermost project frame and the exception (or how it ended)."""
    text = result.stderr
    frames = [(f, ln, fn) for f, ln, fn in FRAME.findall(text) if "/proxylang/" in f or "/segsearch/" in f]
    if result.outcome == "hang":
        project = [
            (f, ln, fn) for f, ln, fn in stuck_frames(text) if "/proxylang/" in f or "/segsearch/" in f
        ]
        if project:
            f, ln, fn = project[0]
            return f"hang (or slow work) in {short_path(f)}:{ln} {fn}"
        return "hang (or slow work), no project frame on the main thread"
    if result.outcome == "messy":
        return "messy stderr (exit 2, not one 'error:' line)"
    last = result.last_line
    exc = (
        last.split(":", 1)[0]
        if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt|Warning)\b", last)
        else last[:60]
    )
    if result.code is not None and result.code < 0:
        exc = f"signal {signal.Signals(-result.code).name}"
    if frames:
        f, ln, fn = frames[-1]
        return f"{short_path(f)}:{ln} in {fn}: {exc}"
    return f"(no project frame): {exc}"


def stuck_frames(text: str) -> list[tuple[str, str, str]]:
    """The frames faulthandler printed for the thread it interrupted (innermost first), else for all."""
    block = text.split("Current thread", 1)[1] if "Current thread" in text else text
    block = re.split(r"\n\s*\nThread 0x", block, maxsplit=1)[0]
    return FRAME.findall(block)


def short_path(path: str) -> str:
    """A source path relative to the repository."""
    for marker in ("/proxylang/", "/segsearch/"):
        if marker in path:
            return marker[1:] + path.split(marker, 1)[1]
    return path


def reproduce(result: Result, root: Path, env: dict[str, str]) -> str:
    """A command line that reproduces ``result`` (paths under the work folder)."""
    case = result.case
    file = (
        (root / "p" / f"{case.index:05d}" / os.fsdecode(case.filename or b"proxy.px")) if case.text else None
    )
    argv = [case.program] + [resolve(a, root, file) for a in case.argv]
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in case.env.items())
    stdin = {"devnull": "", "closed": " <&-"}.get(
        case.stdin, f" < {shlex.quote(resolve(case.stdin, root, file))}"
    )
    line = (prefix + " " if prefix else "") + shlex.join(argv) + stdin
    if case.text is not None:
        shown = case.text if len(case.text) <= 160 else case.text[:120] + b"..." + case.text[-30:]
        line += f"\n        FILE holds {len(case.text)} bytes: {shown!r}"
    return line


def table(results: list[Result]) -> str:
    """Counts per part and category, then overall."""
    rows: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in results:
        rows[(r.case.part, r.case.category)][r.outcome] += 1
        rows[(r.case.part, "(all)")][r.outcome] += 1
        rows[("ALL", "")][r.outcome] += 1
    head = f"{'part':<9}{'category':<19}{'cases':>7}" + "".join(f"{o:>11}" for o in OUTCOMES)
    lines = [head, "-" * len(head)]
    for (part, category), counts in sorted(
        rows.items(), key=lambda kv: (kv[0][0] == "ALL", kv[0][0], kv[0][1] == "(all)", kv[0][1])
    ):
        if part == "ALL" or category == "(all)":
            lines.append("-" * len(head))
        lines.append(
            f"{part:<9}{category:<19}{sum(counts.values()):>7}"
            + "".join(f"{counts[o]:>11}" for o in OUTCOMES)
        )
    return "\n".join(lines)


def failures_text(results: list[Result], root: Path, env: dict[str, str]) -> str:
    """Every failing case, grouped by signature, with its last stderr line and a reproduction."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        if r.outcome in FAILING:
            groups[signature(r)].append(r)
    lines = []
    for sig, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"\n== {sig}  ({len(members)} case{'s' * (len(members) > 1)})")
        for r in members:
            code = "timeout" if r.code is None else r.code
            lines.append(
                f"  [{r.case.part}/{r.case.category}] #{r.case.index} {r.case.desc} | {r.outcome}, "
                f"exit {code}, {r.seconds:.1f}s | {r.last_line[:220]}"
            )
            if r.outcome == "messy":
                lines.append(f"      ({r.noise})")
            lines.append(f"      $ {reproduce(r, root, env)}")
    return "\n".join(lines) if lines else "\n(no failing cases)"


def accepted_options_text(results: list[Result]) -> str:
    """Hostile option cases that exited 0: maybe fine, maybe a value that should have been refused."""
    hits = [
        r
        for r in results
        if r.case.part == "options" and r.outcome == "accepted" and r.case.category != "control"
    ]
    if not hits:
        return ""
    lines = ["\nhostile options that were ACCEPTED (exit 0; check that this is intended):"]
    lines += [f"  [{r.case.category}] #{r.case.index} {r.case.desc} ({r.seconds:.1f}s)" for r in hits]
    return "\n".join(lines)


def verify(runner: Runner, results: list[Result]) -> str:
    """Re-run a handful of Part 1 cases as real subprocesses; the outcome, exit code and last stderr line
    must be the same as in the forked child."""
    wanted: list[Result] = []
    for pick in (
        lambda r: r.outcome == "accepted",
        lambda r: r.outcome == "clean",
        lambda r: r.case.stdin == "closed",
        lambda r: r.case.category == "encodings" and r.outcome == "clean",
        lambda r: r.case.stdin == "@FILE@",
        lambda r: r.outcome == "traceback",
        lambda r: r.outcome == "messy",
    ):
        found = next((r for r in results if pick(r) and r not in wanted and r.outcome != "hang"), None)
        if found is not None:
            wanted.append(found)
    if not wanted:
        return "verify: nothing to compare"
    again = runner.run([r.case for r in wanted], fork=False, progress="verify")
    lines, agree = [], 0
    for a, b in zip(wanted, again, strict=True):
        same = (a.outcome, a.code, a.last_line) == (b.outcome, b.code, b.last_line)
        agree += same
        lines.append(
            f"  {'same' if same else 'DIFFERENT'}: #{a.case.index} {a.case.desc}: forked {a.outcome}/"
            f"{a.code} {a.last_line[:80]!r}"
            + ("" if same else f"; subprocess {b.outcome}/{b.code} {b.last_line[:80]!r}")
        )
    return f"verify: forked child vs real subprocess agree on {agree}/{len(wanted)} cases\n" + "\n".join(
        lines
    )


# ------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of this script."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every generated case")
    p.add_argument(
        "--proxies",
        type=int,
        default=1000,
        help="proxy-text cases: the hand-written ones (about 540) plus generated ones up to N",
    )
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    p.add_argument("--jobs", type=int, default=2, help="cases run at once")
    p.add_argument("--only", choices=("proxies", "options"), help="run one part only")
    p.add_argument("--list", action="store_true", help="print the cases, run nothing")
    p.add_argument("--show-all", action="store_true", help="also print every case's outcome and last line")
    p.add_argument("--match", metavar="TEXT", help="only cases whose category or description contains TEXT")
    p.add_argument(
        "--ids", metavar="N,N,...", help="only the cases with these numbers (as the report prints them)"
    )
    p.add_argument("--memory-gb", type=float, default=6.0, help="address-space cap per case (0: none)")
    p.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-run a few proxy cases as real subprocesses",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        help="keep inputs and fixtures here (to reproduce failures) instead of a temporary folder",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build, run and report; 1 if any case gave a traceback or hung."""
    global KEEP_INPUTS
    args = parse_args(argv)
    start = time.monotonic()
    root = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="hostile-"))
    KEEP_INPUTS = args.workdir is not None
    root.mkdir(parents=True, exist_ok=True)
    for leftover in (
        "special",
        "p",
        "captures",
        "runs",
        "cache",
        "segsearch-cache",
        "opt",
    ):  # a reused --workdir
        if (root / leftover).exists() and not args.list:
            shutil.rmtree(root / leftover)
    env = {
        **os.environ,
        "PROXYLANG_DATA": DATA,
        "PROXYLANG_CACHE": str(root / "cache"),
        "SEGSEARCH_CACHE": str(root / "segsearch-cache"),
        "PROXYLANG_THREADS": "1",
        "PYTHONFAULTHANDLER": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    parts = [args.only] if args.only else ["proxies", "options"]
    fixtures = Fixtures(root)
    cases = {
        "proxies": proxy_cases(args.seed, args.proxies),
        "options": option_cases(fixtures, root / "runs"),
    }
    # stable numbers whichever part runs: proxies from 0, options from the next multiple of 1,000
    offset = -(-len(cases["proxies"]) // 1000) * 1000
    for part, first in (("proxies", 0), ("options", offset)):
        for i, case in enumerate(cases[part]):
            case.index = first + i
    cases = {part: cases[part] for part in parts}
    if args.match:
        cases = {
            k: [c for c in v if args.match in c.category or args.match in c.desc] for k, v in cases.items()
        }
    if args.ids:
        wanted = {int(n) for n in args.ids.split(",") if n.strip()}
        cases = {k: [c for c in v if c.index in wanted] for k, v in cases.items()}
    if args.list:
        for part in parts:
            for c in cases[part]:
                r = Result(c, "", 0, 0.0, "", "")
                print(
                    f"#{c.index:<5} {part:<8} {c.category:<18} {c.desc}\n        $ {reproduce(r, root, env)}"
                )
        counts = ", ".join(f"{k}: {len(v)}" for k, v in cases.items())
        print(f"{sum(len(v) for v in cases.values())} cases ({counts})")
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
        return 0
    runner = Runner(root, max(1, args.jobs), args.timeout, args.memory_gb, env)
    results: list[Result] = []
    report: list[str] = []
    try:
        if "proxies" in parts:
            make_specials(root)
            t0 = time.monotonic()
            found = runner.run(cases["proxies"], fork=True, progress="proxies")
            report.append(f"proxies: {len(found)} cases in {time.monotonic() - t0:.0f} s (forked children)")
            drop_sparse(root)
            results += found
            if args.verify:
                report.append(verify(runner, found))
        if "options" in parts:
            t0 = time.monotonic()
            fixtures.build()  # after the forks: it runs torch, which is not fork-safe once it has threads
            report += [f"note: {n}" for n in fixtures.notes]
            found = runner.run(cases["options"], fork=False, progress="options")
            report.append(f"options: {len(found)} cases in {time.monotonic() - t0:.0f} s (subprocesses)")
            results += found
    finally:
        drop_sparse(root)
        if not args.workdir:
            for path in (root / "special" / "noread.px",):
                if path.exists():
                    path.chmod(0o600)
    if args.show_all:
        for r in results:
            code = "timeout" if r.code is None else r.code
            print(
                f"#{r.case.index:<5} {r.outcome:<9} {code!s:>7} {r.seconds:5.1f}s [{r.case.category}] "
                f"{r.case.desc} | {r.last_line[:160]}"
            )
        print()
    print(table(results))
    print(failures_text(results, root, env))
    print(accepted_options_text(results))
    print("\n" + "\n".join(report))
    print(
        f"total wall time {time.monotonic() - start:.0f} s; seed {args.seed}; work folder "
        f"{root if args.workdir else '(temporary, deleted)'}"
    )
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if any(r.outcome in ("traceback", "hang") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
