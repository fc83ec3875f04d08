import pickle

import pytest

from proxylang.errors import LocatedError, ProxySyntaxError, ProxyTypeError


@pytest.mark.parametrize("kind", [LocatedError, ProxySyntaxError, ProxyTypeError])
def test_a_located_error_reads_the_same_after_a_trip_to_a_worker(kind):
    error = kind("shapes differ", 3, 7, "a.px")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is kind and str(back) == str(error) == "a.px:3:7: shapes differ"
    assert (back.line, back.column, back.source) == (3, 7, "a.px")
