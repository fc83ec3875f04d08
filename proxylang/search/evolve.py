"""What the search engine (:mod:`proxylang.search.engine`) needs to know about proxy expressions besides
their genetic operators: their JSON form, so that a checkpoint stores a candidate as data rather than as
a pickle (loading a pickle can run code).

An input is its name (``"W"``), a literal its number, a call a list of its operator and arguments
(``["pow", "W", 2.0]``). The form keeps exactly what tree equality compares (source positions are not
kept), and JSON tells ``2`` from ``2.0``, so a resumed search mutates the very trees it saved.
"""

from __future__ import annotations

from typing import Any

from proxylang.errors import ProxylangError
from proxylang.lang.ast import Call, Input, Node, Num


def node_to_json(node: Node) -> Any:
    """The JSON data of an expression tree."""
    if isinstance(node, Input):
        return node.name
    if isinstance(node, Num):
        return node.value
    assert isinstance(node, Call)
    return [node.op, *(node_to_json(a) for a in node.args)]


def node_from_json(data: Any) -> Node:
    """The tree :func:`node_to_json` wrote; anything else is a :class:`ProxylangError`."""
    if isinstance(data, str):
        return Input(data)
    if isinstance(data, int | float) and not isinstance(data, bool):
        return Num(data)
    if isinstance(data, list) and data and isinstance(data[0], str):
        return Call(data[0], tuple(node_from_json(a) for a in data[1:]))
    raise ProxylangError(f"not an expression: {str(data)[:60]}")
