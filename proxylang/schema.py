"""Settings read from files and options, checked against the dataclass that holds them.

A config table or option value is checked against the field's type annotation and its documented
range before any work starts, so ``population = 2.5``, ``start_with = 3`` or ``population = 10**12``
end in one ``ConfigError`` that names the key and what it expects, never in a ``TypeError`` deep inside
a run, or in a run that goes on with a nonsense value. Ranges live beside the fields
(:func:`bounded`), so the check of a value read from a file and of one built in code is the same.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from proxylang.errors import ConfigError, ProxylangError, short_repr

T = TypeVar("T")

MAX_SEED = 2**32 - 1  # numpy's and torch's seeds are 32-bit wide on every platform


def bounded(default: Any, low: float | None = None, high: float | None = None) -> Any:
    """A dataclass field whose value (when not None) must lie in ``[low, high]``."""
    return dataclasses.field(default=default, metadata={"range": (low, high)})


def check_ranges(settings: Any, what: str) -> None:
    """Raise ``ConfigError`` for the first field of ``settings`` outside its :func:`bounded` range."""
    for f in dataclasses.fields(settings):
        low, high = f.metadata.get("range", (None, None))
        value = getattr(settings, f.name)
        if value is None or (low is None and high is None):
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            span = (f"at least {low}" if high is None else f"at most {high}" if low is None
                    else f"between {low} and {high}")
            raise ConfigError(f"{what} {f.name} must be {span}, got {value}")


def _expected(hint: Any) -> str:
    """How an error names the type a value should have."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in get_args(hint) if a is not type(None))
    if origin is tuple:
        return f"a list of {_expected(get_args(hint)[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    return names[hint]


def _convert(value: Any, hint: Any) -> tuple[bool, Any]:
    """``(True, value)`` in the field's own type (a TOML list becomes a tuple, an integer a float) when
    ``value`` fits ``hint``, else ``(False, None)``. ``bool`` is not taken for a number."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            fits, converted = _convert(value, option)
            if fits:
                return True, converted
        return False, None
    if hint is type(None):
        return value is None, None
    if origin is tuple:
        item = get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            return False, None
        items = [_convert(v, item) for v in value]
        return all(fits for fits, _ in items), tuple(v for _, v in items)
    if hint is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, None
    if hint is int:
        return isinstance(value, int), value
    if hint is float:
        fits = isinstance(value, (int, float)) and math.isfinite(value)
        return fits, float(value) if fits else None
    if hint is str:
        return isinstance(value, str), value
    raise TypeError(f"no schema for the annotation {hint!r}")  # a field type this module does not know


def from_mapping(cls: type[T], values: Any, where: str, base: T | None = None) -> T:
    """An instance of the dataclass ``cls`` from ``values`` (a config table, or options) over ``base``
    (default: the class defaults). ``where`` names the table in errors, e.g. ``run.toml [search]``."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a table of settings, got {short_repr(values)}")
    hints = get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; "
                          f"known: {', '.join(known)}")
    converted = {}
    for key, value in values.items():
        fits, converted[key] = _convert(value, hints[key])
        if not fits:
            raise ConfigError(f"{where}: {key} must be {_expected(hints[key])}, got {short_repr(value)}")
    try:
        return dataclasses.replace(base, **converted) if base is not None else cls(**converted)
    except ProxylangError as exc:  # the dataclass's own checks (ranges, choices)
        raise ConfigError(f"{where}: {exc}") from None
