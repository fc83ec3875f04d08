import pytest
from conftest import REPO

from proxylang.errors import ProxyTypeError
from proxylang.lang.check import check, check_expr
from proxylang.lang.parse import parse
from proxylang.lang.primitives import primitive_table
from proxylang.lang.types import NET, N, O


@pytest.mark.parametrize("text, level", [
    ("sum(lt(softmax(W), relu(G)))", "conv"), ("slogdet(gram(W))", "conv"),
    ("let c = gt(R, 0)\nslogdet(layersum(gram(c) + gram(1 - c)))", NET),
    ("norm_avt(sum(W)) + norm_avt(slogdet(layersum(gram(R))))", NET), ("sum(matmul(gram(W), G))", "conv"),
    ("cosine(A, 2 * A) + mean(W)", "conv"), ("sum(hamming(R, R))", "relu"),
])
def test_accepts(text, level):
    assert check(parse(text)).type.level == level


def test_gram_shape_is_symbolic():
    assert check_expr(parse("gram(W) + 1")).type.shape == (O, O)
    assert check_expr(parse("layersum(gram(A))")).type.shape == (N, N)


@pytest.mark.parametrize("text, expr, column, words", [
    ("sum(matmul(W, A))", "matmul(W, A)", 5, "inner dimensions"),
    ("slogdet(W)", "slogdet(W)", 1, "square"),
    ("sum(W + A)", "W + A", 5, "differ"),
    ("sum(W) + sum(R)", "sum(W) + sum(R)", 1, "mixes"),
    ("slogdet(layersum(gram(W)))", "layersum(gram(W))", 9, "varies by site"),
    ("gram(W)", "gram(W)", 1, "scalar"),
    ("1 + 2", "1 + 2", 1, "statistic"),
    ("sum(3)", "sum(3)", 1, "matrix"),
    ("norm_avt(W)", "norm_avt(W)", 1, "whole proxy"),
])
def test_rejects_with_expression_and_column(text, expr, column, words):
    with pytest.raises(ProxyTypeError) as info:
        check(parse(text), "f.px")
    assert info.value.column == column and words in info.value.message
    assert str(info.value).startswith(f"f.px:1:{column}: {expr}: ")


def test_language_doc_lists_every_primitive_as_the_registry_does():
    doc = (REPO / "docs" / "language.md").read_text(encoding="utf-8")
    table = doc.split("<!-- primitives:begin -->\n")[1].split("<!-- primitives:end -->")[0]
    assert table.strip() == primitive_table().strip()
