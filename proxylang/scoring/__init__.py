"""Stage 3, scoring: proxies applied to statistics or networks, and the rank correlations that say how
well a proxy orders architectures (``evaluate``); the classic proxies it is compared with
(``baselines``)."""
