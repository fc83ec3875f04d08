import pytest

from proxylang.lang.parse import parse
from proxylang.lang.printer import to_latex, to_text


@pytest.mark.parametrize("text, canonical", [
    ("lt(softmax(W), relu(G))", "softmax(W) < relu(G)"),
    ("sub(W, sub(G, A))", "W - (G - A)"), ("sub(sub(W, G), A)", "W - G - A"),
    ("mul(add(W, G), A)", "(W + G) * A"), ("div(W, mul(G, A))", "W / (G * A)"),
    ("sub(2, -1)", "2 - -1"), ("mul(-1, W)", "-1 * W"), ("pow(W)", "pow(W, 2)"),
    ("lt(lt(W, G), A)", "(W < G) < A"), ("pow(W, 0.5)", "pow(W, 0.5)"),
])
def test_canonical_spelling(text, canonical):
    assert to_text(parse(text)) == canonical


def test_latex_groups_sums_inside_products():
    latex = to_latex(parse("slogdet(layersum(gram(R > 0) + gram(1 - (R > 0))))"))
    assert r"\left(1 - \left[R > 0\right]\right)^{\top}" in latex and latex.startswith(r"\ln\left|\det")
