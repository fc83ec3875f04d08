"""``python -m proxylang``: the ``proxylang`` command, for machines where the package is on the path
but not installed."""

from proxylang.cli.main import main

main()
