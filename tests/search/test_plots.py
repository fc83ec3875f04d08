import matplotlib.image
import numpy as np

from proxylang.search.plots import (
    CAPTION_WIDTH,
    best_so_far,
    plot_proxy_vs_accuracy,
    plot_strategy_spread,
    proxy_caption,
    spread,
)

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


def test_best_so_far_reads_each_budget_off_the_records():
    curve = [(21, 0.5), (31, 0.4), (41, 0.6)]  # a later record never lowers the best
    assert np.allclose(best_so_far(curve, np.array([20, 21, 35, 41, 100])), [np.nan, 0.5, 0.5, 0.6, 0.6],
                       equal_nan=True)


def test_the_spread_of_several_runs(tmp_path):
    runs = [[(20, 0.5), (40, 0.7)], [(30, 0.4), (40, 0.6)]]
    seen, low, mean, high = spread(runs, np.array([20, 30, 40]))
    assert seen.tolist() == [False, True, True]  # until every run has a record
    assert np.allclose([low, mean, high], [[0.4, 0.6], [0.45, 0.65], [0.5, 0.7]])
    path = plot_strategy_spread({"evolution": runs, "random": [[(20, 0.5)]]}, tmp_path / "s.png", "micro")
    assert matplotlib.image.imread(path).shape[:2] == (480, 720)
