"""Stage 2, statistics: one forward/backward pass of a network under a measurement profile gives the
per-layer activations, gradients and weights (``NetStats``) that proxies read; ``StatsCache`` keeps
them on disk."""

from proxylang.stats.netstats import NetStats

__all__ = ["NetStats"]
