import matplotlib.image
import numpy as np

from proxylang.search.plots import CAPTION_WIDTH, plot_proxy_vs_accuracy, proxy_caption

LONG = ("let c = gt(R, 0)\nnorm_avt(sum(lt(softmax(W), relu(G))) + layersum(frobenius(pow(abs(W - G), 0.5)) "
        "* mean(sigmoid(W * G)))) + norm_avt(slogdet(layersum(gram(c) + gram(1 - c))))")


def test_caption_keeps_the_whole_proxy_in_short_lines():
    lines = proxy_caption(LONG)
    assert len(lines) > 2 and all(len(line) <= CAPTION_WIDTH for line in lines)
    assert "".join(lines).replace(" ", "") == LONG.replace("\n", "").replace(" ", "")  # nothing cut off
    assert lines[0] == "let c = gt(R, 0)"  # the proxy's own lines stay lines


def test_a_longer_proxy_makes_a_taller_figure_not_a_cut_title(tmp_path):
    rng = np.random.default_rng(0)
    scores, accuracy = rng.random(30), rng.random(30)
    def drawn(name, proxy):
        return matplotlib.image.imread(plot_proxy_vs_accuracy(scores, accuracy, tmp_path / name, "Kd", proxy))

    short, long = drawn("a.png", "sum(W)"), drawn("b.png", LONG)
    assert long.shape[1] == short.shape[1] and long.shape[0] > short.shape[0]
    # the caption is drawn: the bottom rows of the long figure hold dark (text) pixels
    assert long[-40:, :, :3].min() < 0.5
