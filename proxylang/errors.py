"""User-facing errors: every one of them is printed by the CLIs as a single line, never a traceback."""

from __future__ import annotations


def short_repr(value: object) -> str:
    """A value read from a file or an option, shown in one short error line whatever its size or
    nesting."""
    try:
        text = repr(value)
    except RecursionError:  # a list nested thousands deep
        text = ""
    if isinstance(value, (list, dict)) and not 0 < len(text) <= 40:
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    return text if len(text) <= 40 else text[:37] + "..."


class ProxylangError(Exception):
    """Base of every error caused by the user's input (expression, file, option, data)."""


class LocatedError(ProxylangError):
    """An error at a place in an expression's source text (1-based line and column)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 source: str = "<expr>") -> None:
        self.message, self.line, self.column, self.source = message, line, column, source
        where = source if line is None else f"{source}:{line}:{column}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple:
        """Rebuilt from its parts, so one raised in a worker process reads the same in the parent."""
        return type(self), (self.message, self.line, self.column, self.source)


class ProxySyntaxError(LocatedError):
    """The text is not a well-formed proxy expression."""


class ProxyTypeError(LocatedError):
    """The expression is well formed but ill typed (e.g. a shape mismatch), caught before anything runs."""


class DataError(ProxylangError):
    """A benchmark or statistics file is missing, corrupt, or does not hold what was asked for."""


class ConfigError(ProxylangError):
    """A setting (config file key, option, saved run file) has the wrong type or lies outside its range."""


class MemoryBudgetError(ProxylangError):
    """Running a proxy, or measuring a network, would need more memory than the budget allows."""
