"""``python -m proxylang``: the ``proxylang`` command, for machines where the package is on the path
but not installed."""

from proxylang.cli.main import main

if __name__ == "__main__":  # a spawned worker process imports this module too
    main()
