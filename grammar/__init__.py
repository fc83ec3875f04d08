"""The proxy grammar, ``proxy.lark``: installed as the package ``proxylang.grammar`` (see pyproject)."""
