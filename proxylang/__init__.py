"""proxylang: a language for zero-cost NAS proxies, its compiler, and an evolutionary proxy search.

``proxylang.score(proxy, models, batch)`` scores any ``nn.Module`` s with any proxy (see
:mod:`proxylang.scoring.proxies`); the rest of this namespace is the language's own API."""

from proxylang.lang.canonical import canonical_key, simplify
from proxylang.lang.check import Typed, check
from proxylang.lang.compile import CompiledProxy, PackedStats, compile_proxy, evaluate_eager, pack
from proxylang.lang.parse import parse
from proxylang.lang.printer import to_latex, to_text
from proxylang.scoring.proxies import Scores, score
from proxylang.search.genetic import crossover, mutate, random_expr

__version__ = "0.1.0"

__all__ = ["CompiledProxy", "PackedStats", "Scores", "Typed", "canonical_key", "check", "compile_proxy",
           "crossover", "evaluate_eager", "mutate", "pack", "parse", "random_expr", "score", "simplify",
           "to_latex", "to_text"]
