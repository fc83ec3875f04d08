"""Stage 1, the language: text -> typed AST -> canonical form -> compiled torch function.

``parse`` reads text, ``check`` infers symbolic shapes (early rejection), ``canonical`` gives the keys
that deduplicate a search, ``printer`` writes text and LaTeX, ``compile`` turns a checked proxy into a
function of a network's statistics (its DAG in ``graph``, run by ``interpret`` on statistics packed by
``pack``). Every stage reads the primitive registry in ``primitives``."""
