"""proxylang: a language for zero-cost NAS proxies, its compiler, and an evolutionary proxy search."""

__version__ = "0.1.0"
