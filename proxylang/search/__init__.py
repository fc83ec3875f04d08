"""Stage 4, search: genetic operators on proxy expressions (``genetic``), the evolutionary loop
(``evolve``) and the data it searches on (``data``)."""
