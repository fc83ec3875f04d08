"""Stage 4, search: the evolutionary engine, generic over candidates (``engine``; ``segsearch`` runs on it
too), genetic operators on proxy expressions (``genetic``) and their JSON form (``evolve``), and the data
a proxy search runs on (``data``)."""
