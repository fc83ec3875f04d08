"""proxylang: a language for zero-cost NAS proxies, its compiler, and an evolutionary proxy search."""

from proxylang.canonical import canonical_key, simplify
from proxylang.check import Typed, check
from proxylang.compile import CompiledProxy, PackedStats, compile_proxy, evaluate_eager, pack
from proxylang.genetic import crossover, mutate, random_expr
from proxylang.parse import parse
from proxylang.printer import to_latex, to_text

__version__ = "0.1.0"

__all__ = ["CompiledProxy", "PackedStats", "Typed", "canonical_key", "check", "compile_proxy", "crossover",
           "evaluate_eager", "mutate", "pack", "parse", "random_expr", "simplify", "to_latex",
           "to_text"]
