"""MLPerf Tiny's four reference models: MAC counts against the published figures, structure,
stand-in data, the ROC AUC, and that each trained model beats chance by a stated margin.

The MAC totals below are worked out from the layer shapes of the reference code, not from the
modules: output height x width x channels x (input channels / groups) x kernel taps, every tap
counted including those on 'same' padding (as hwaccel.models.metrics counts them), dense layers
as inputs x outputs, biases, BatchNorm, pooling and adds free. That reproduces each published
figure to its stated rounding. The last test trains the four on first use (about 1.5 minutes
cold on two cores) and loads them from build/models afterwards.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.fx
import torch.nn.functional as F

from hwaccel.models import WORKLOADS, evaluate, load, macs, roc_auc, workload
from hwaccel.models.metrics import folded_params, reconstruction_error
from hwaccel.models.mlperf import DSCNN, AutoEncoder, MobileNetV1, ResNet8, same_pad
from hwaccel.models.mlperf_data import (
    COEFFS,
    FRAMES,
    NOISE,
    SILENCE,
    digits_rgb,
    keywords,
    machine_sounds,
    wake_words,
)

RESNET8 = (32 * 32 * 16 * 3 * 9                       # conv 3x3, 16
           + 2 * 32 * 32 * 16 * 16 * 9                # stage 1: two 3x3 16 -> 16
           + 16 * 16 * 32 * (16 * 9 + 32 * 9 + 16)    # stage 2: 3x3 s2, 3x3, 1x1 s2 shortcut
           + 8 * 8 * 64 * (32 * 9 + 64 * 9 + 32)      # stage 3: the same at 64
           + 64 * 10)                                 # dense
DSCNN_MACS = 25 * 5 * 64 * 10 * 4 + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12
AUTOENCODER = 640 * 128 + 3 * 128 * 128 + 128 * 8 + 8 * 128 + 3 * 128 * 128 + 128 * 640


def _mobilenet_macs() -> int:
    total, size, cin = 48 * 48 * 8 * 3 * 9, 48, 8   # conv 3x3 s2, 8
    for stride, cout in [(1, 16), (2, 32), (1, 32), (2, 64), (1, 64), (2, 128)] + [(1, 128)] * 5 \
            + [(2, 256), (1, 256)]:
        size //= stride
        total += size * size * cin * 9 + size * size * cout * cin   # depthwise + pointwise
        cin = cout
    return total + 256 * 2


@pytest.mark.parametrize("net, exact, published, digits", [
    (ResNet8, RESNET8, "12.50", 2), (DSCNN, DSCNN_MACS, "2.66", 2),
    (MobileNetV1, _mobilenet_macs(), "7.49", 2), (AutoEncoder, AUTOENCODER, "0.264", 3)])
def test_macs_are_the_published_figures(net, exact, published, digits):
    counted = macs(net(), net.INPUT)
    assert counted == exact
    assert f"{counted / 1e6:.{digits}f}" == published  # M MACs as MLPerf Tiny states them


def test_mac_count_includes_padded_taps_and_the_brief_cnn():
    # a 3x3 depthwise conv on a 4x4 map with 'same' padding: 16 outputs x 9 taps, border or not
    dw = torch.nn.Conv2d(5, 5, 3, padding=1, groups=5)
    assert macs(dw, (5, 4, 4)) == 5 * 16 * 9
    assert macs(WORKLOADS["cnn"].net(), (1, 28, 28)) == 2_794_240


@pytest.mark.parametrize("net, params", [
    (ResNet8, 77_706), (DSCNN, 22_604), (MobileNetV1, 210_850), (AutoEncoder, 265_864)])
def test_parameters_with_batchnorm_folded(net, params):
    assert folded_params(net()) == params


def test_tensorflow_same_padding():
    assert same_pad((32, 32), (3, 3), (2, 2)) == (0, 1, 0, 1)    # left, right, top, bottom
    assert same_pad((49, 10), (10, 4), (2, 2)) == (1, 1, 4, 5)   # DS-CNN's first layer
    assert same_pad((6, 6), (3, 3), (1, 1)) == (1, 1, 1, 1)      # stride 1: symmetric
    assert same_pad((32, 32), (1, 1), (2, 2)) == (0, 0, 0, 0)    # 1x1 shortcut
    # the padded stride-2 conv lands on TensorFlow's grid: output (i, j) centred on input
    # (2i + 1, 2j + 1) (before-padding 0), i.e. it equals a symmetric pad-1 conv's odd taps
    conv, x = torch.nn.Conv2d(1, 1, 3, 2), torch.randn(1, 1, 8, 8)
    sym = F.conv2d(x, conv.weight, conv.bias, padding=1)[..., 1::2, 1::2]
    assert torch.allclose(conv(F.pad(x, same_pad((8, 8), (3, 3), (2, 2)))), sym, atol=1e-6)


def _feature_shapes(model, shape):
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = tuple(inputs[0].shape)
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules()
             if isinstance(m, torch.nn.AvgPool2d)]
    out = model.eval()(torch.zeros(2, *shape))
    for h in hooks:
        h.remove()
    return out.shape, seen["pool"]


@pytest.mark.parametrize("net, out, pooled", [
    (ResNet8, (2, 10), (2, 64, 8, 8)), (DSCNN, (2, 12), (2, 64, 25, 5)),
    (MobileNetV1, (2, 2), (2, 256, 3, 3))])
def test_shapes_and_the_pool_covers_the_whole_map(net, out, pooled):
    model = net()
    assert _feature_shapes(model, net.INPUT) == (out, pooled)
    assert tuple(model.pool.kernel_size if isinstance(model.pool.kernel_size, tuple)
                 else (model.pool.kernel_size,) * 2) == pooled[2:]
    assert AutoEncoder().eval()(torch.zeros(2, 640)).shape == (2, 640)


@pytest.mark.parametrize("net, adds, pads, depthwise", [
    (ResNet8, 3, 2, 0), (DSCNN, 0, 1, 4), (MobileNetV1, 0, 5, 13), (AutoEncoder, 0, 0, 0)])
def test_models_trace_with_fx(net, adds, pads, depthwise):
    torch.manual_seed(0)
    model = net().eval()
    graph = torch.fx.symbolic_trace(model)
    x = torch.randn(3, *net.INPUT)
    assert torch.equal(graph(x), model(x))
    calls = [n.target.__name__ for n in graph.graph.nodes if n.op == "call_function"]
    assert calls.count("add") == adds and calls.count("pad") == pads
    assert sum(isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1
               for m in model.modules()) == depthwise


def test_roc_auc_matches_sklearn_with_ties(seed):
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 12, 300).astype(float)   # many ties
    labels = (rng.random(300) < 0.4).astype(int)
    assert roc_auc(scores, labels) == pytest.approx(sklearn.roc_auc_score(labels, scores),
                                                    abs=1e-12)
    assert roc_auc([1.0, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert roc_auc([4.0, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([5.0, 5, 5, 5], [0, 1, 0, 1]) == 0.5
    with pytest.raises(ValueError, match="roc_auc needs both classes, not 0 anomalous and 3"):
        roc_auc([1.0, 2, 3], [0, 0, 0])
    with pytest.raises(ValueError, match=r"outputs must have the inputs' shape \(2, 3\)"):
        reconstruction_error(np.zeros((2, 3)), np.zeros((2, 4)))


def test_keywords_are_deterministic_balanced_and_shaped():
    a, b = keywords(n_train=240, n_test=120), keywords(n_train=240, n_test=120)
    assert a.x_train.shape == (240, 1, FRAMES, COEFFS) and a.x_test.shape == (120, 1, FRAMES,
                                                                             COEFFS)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, keywords(n_train=240, n_test=120, seed=1).x_train)
    assert torch.bincount(a.y_train).tolist() == [20] * 12
    # silence is background noise alone; a word adds its unit-variance phones on ~40 % of frames
    silence = a.x_train[a.y_train == SILENCE]
    assert abs(float(silence.std()) - NOISE) < 0.05 * NOISE
    assert float(a.x_train[a.y_train < SILENCE].var()) - NOISE ** 2 > 0.25


def test_machine_sounds_train_on_normal_and_test_on_both():
    a, b = machine_sounds(n_train=100, n_test=50), machine_sounds(n_train=100, n_test=50)
    assert a.x_train.shape == (100, 640) and a.x_test.shape == (100, 640)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)
    assert a.y_train.tolist() == [0] * 100 and torch.bincount(a.y_test).tolist() == [50, 50]
    assert torch.isfinite(a.x_test).all()


def test_digit_images_for_resnet_and_mobilenet():
    s, w = digits_rgb(32), wake_words()
    assert s.x_train.shape[1:] == (3, 32, 32) and w.x_test.shape[1:] == (3, 96, 96)
    assert torch.equal(s.x_train[:, 0], s.x_train[:, 2])
    assert torch.equal(w.y_test, (digits_rgb(96).y_test >= 5).long())
    assert set(w.y_train.tolist()) == {0, 1}


def test_registry_shapes_and_scores():
    for name, w in WORKLOADS.items():
        x = torch.zeros(2, *w.input_shape, dtype=w.input_dtype)
        out = w.net().eval()(x)
        assert out.shape[0] == 2, name
    ae = workload("autoencoder")
    x, y = torch.zeros(4, 640), torch.tensor([0, 1, 0, 1])
    assert ae.metric == "roc-auc" and ae.score(x, x + y[:, None].float(), y) == 1.0
    assert workload("dscnn").score(x, torch.eye(4), torch.tensor([0, 1, 0, 3])) == 0.75
    with pytest.raises(ValueError, match="model must be one of cnn, lstm, resnet8, dscnn, "
                                         "mobilenet, autoencoder, transformer, "
                                         "transformer_tokens, not 'vgg'"):
        workload("vgg")


# chance: the largest class's share (top-1) or 0.5 (ROC AUC); each must beat it by the margin
MARGINS = {"resnet8": 0.6, "dscnn": 0.5, "mobilenet": 0.15, "autoencoder": 0.3}


@pytest.mark.parametrize("name", list(MARGINS))
def test_trained_model_beats_chance(name):
    threads = torch.get_num_threads()
    model, split = load(name)
    assert torch.get_num_threads() == threads  # training ran on one thread and gave it back
    score = evaluate(name, model, split)
    chance = 0.5 if name == "autoencoder" else float(
        torch.bincount(split.y_test).max()) / len(split.y_test)
    print(f"{name}: {WORKLOADS[name].metric} {score:.4f} (chance {chance:.3f})")
    assert score >= chance + MARGINS[name]
