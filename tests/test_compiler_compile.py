"""The compiler: tracing is faithful, unsupported ops are refused by name and place,
memory and engine limits are named with their shortfall, and the largest batch is exact."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwaccel
from hwaccel.compiler import DoesNotFit, LoweringError, UnsupportedOp
from hwaccel.compiler.cases import MODELS, StackedLstm, make, sequential
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import MODEL_PRESETS, PRESETS
from hwaccel.generators.conv.layer import ConvLayer, descriptor
from hwaccel.models import load


@pytest.fixture(scope="module")
def cnn():
    model, data = load("cnn")
    return hwaccel.compile(model, data.x_test[:2], calibration=data.x_train[:256]), data


@pytest.fixture(scope="module")
def lstm():
    model, data = load("lstm")
    return hwaccel.compile(model, data.x_test[:2], calibration=data.x_train[:256]), data


@pytest.mark.parametrize("name", list(MODELS))
def test_trace_is_faithful(name):
    model, inputs = make(name)
    x = inputs(3, torch.Generator().manual_seed(1))
    graph = trace(model, x)
    with torch.no_grad():
        ref = model.double()(x if graph.tokens else x.double())
    out = float_forward(graph, x)
    if graph.head == "softmax":
        out = torch.softmax(out, dim=-1)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-12)


def test_trace_keeps_the_training_flag():
    model = sequential().train()
    trace(model, torch.randn(1, 1, 8, 8))
    assert model.training


class Product(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x):   # one number a sample, (1, 1, 1), times (2, H, W)
        return self.a(x).mean((2, 3), keepdim=True) * x


class GetAttr(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return F.linear(x, self.fc.weight)


class EmbedLater(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.e = nn.Embedding(4, 4)

    def forward(self, x):
        return self.e(self.fc(x).argmax(-1))


IMG = torch.randn(1, 2, 8, 8)
UNSUPPORTED = [  # model, input, words the error must contain (op, place, attribute)
    (nn.Sequential(nn.Conv2d(2, 2, 3, dilation=2, padding=5)), IMG,
     ["Conv2d attribute", "'0'", "padding=(5, 5)", "below the (dilated) kernel"]),
    (nn.Sequential(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 3, stride=3)), IMG,
     ["stride=(3, 3)", "any on the model's input"]),
    (nn.Sequential(nn.ZeroPad2d((0, 2, 0, 0)), nn.Conv2d(2, 2, (3, 2))), IMG,
     ["padding=(0, 0)", "folded in: (0, 0, 0, 2)"]),
    (nn.Sequential(nn.ZeroPad2d(1), nn.MaxPool2d(2)), IMG, ["F.pad / ZeroPad2d", "'0'",
                                                           "only folded into the Conv2d"]),
    (nn.Sequential(nn.ConstantPad2d(1, 0.5), nn.Conv2d(2, 2, 3)), IMG, ["ConstantPad2d"]),
    (nn.Sequential(nn.Conv2d(2, 2, 3, padding=2)), IMG, ["padding=(2, 2)"]),
    (nn.Sequential(nn.Conv2d(2, 2, 3, padding_mode="reflect")), IMG, ["padding_mode"]),
    (nn.Sequential(nn.Conv2d(2, 2, 3), nn.MaxPool2d(3)), IMG, ["MaxPool2d attribute", "'1'"]),
    (nn.Sequential(nn.Conv2d(2, 2, 2), nn.MaxPool2d(2, ceil_mode=True)), IMG,
     ["MaxPool2d in ceil mode", "a 7x7 map which may be negative"]),
    (nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False)), IMG,
     ["AvgPool2d attribute", "count_include_pad=False"]),
    (nn.Sequential(nn.AvgPool2d(3, stride=2, ceil_mode=True)), IMG,
     ["AvgPool2d attribute", "ceil_mode=True"]),
    (nn.Sequential(nn.AdaptiveAvgPool2d(3)), IMG, ["output_size=3 on a 8x8 map"]),
    (nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(3)), torch.randn(2, 3, 4),
     ["BatchNorm1d", "'2'", "on a sequence only right after a Linear"]),
    (nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2, track_running_stats=False)), IMG,
     ["BatchNorm2d attribute", "track_running_stats=False"]),
    (nn.Sequential(nn.Conv2d(2, 2, 3), nn.Upsample(scale_factor=2, mode="bilinear")), IMG,
     ["Upsample mode", "mode='bilinear'"]),
    (nn.Sequential(nn.LSTM(4, 4, batch_first=True, bidirectional=True)), torch.randn(1, 3, 4),
     ["LSTM attribute", "bidirectional"]),
    (nn.Sequential(nn.LSTM(4, 4)), torch.randn(1, 3, 4), ["batch_first=False"]),
    (nn.Sequential(nn.GRU(4, 4, batch_first=True)), torch.randn(1, 3, 4), ["module GRU"]),
    (Product(), IMG, ["mul of two tensors", "at mul", "per-sample shapes (1, 1, 1) and (2, "]),
    (GetAttr(), torch.randn(1, 4), ["parameter used outside its module", "fc.weight"]),
    (EmbedLater(), torch.randn(1, 4), ["Embedding", "module 'e'", "token-id input"]),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(-1), nn.Linear(4, 2)), torch.randn(1, 4),
     ["an op after the host head", "module '2'"]),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(0)), torch.randn(1, 4), ["softmax", "dim=0"]),
    (nn.Sequential(nn.Flatten(2)), IMG, ["Flatten attribute", "start_dim=2"]),
    (nn.Sequential(nn.Linear(8, 2)), IMG, ["Linear", "flatten an image first"]),
    (nn.Sequential(nn.Conv2d(2, 2, 3)), torch.randn(2, 2, 5, 5)[0], ["Conv2d", "(5, 5)"]),
]


@pytest.mark.parametrize("model, x, words", UNSUPPORTED,
                         ids=[w[0] + "-" + str(i) for i, (_, _, w) in enumerate(UNSUPPORTED)])
def test_unsupported_is_named(model, x, words):
    with pytest.raises(UnsupportedOp) as info:
        hwaccel.compile(model, x)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg
    assert "Supported: Conv2d" in msg  # and the error lists what is supported


def test_reference_models_compile(cnn, lstm):
    cm, _ = cnn
    kinds = [type(op).__name__ for op in cm.qgraph.ops]
    assert kinds == ["QConv", "QConv", "QConv", "QFlatten", "QLinear", "QLinear"]
    assert [op.pool for op in cm.qgraph.ops[:3]] == [True, True, False]
    table = cm.describe()
    for name in ("conv1", "conv2", "conv3", "fc1", "fc2"):
        assert name in table
    assert "CONV (kernel covers the map)" in table and "GEMM (whole batch)" in table
    lm, _ = lstm
    assert [type(op).__name__ for op in lm.qgraph.ops] == ["QEmbedding", "QLstm", "QLstm",
                                                           "QLinear"]
    assert [op.last_step for op in lm.qgraph.ops[1:3]] == [False, True]
    assert "LSTM per sample" in lm.describe()


def test_macs_per_sample(cnn, lstm):
    """Against the module's own shapes (forward hooks), not the IR's."""
    def hooked(model, x):
        total = []

        def hook(m, inp, out):
            out = out[0] if isinstance(out, tuple) else out
            if isinstance(m, nn.Conv2d):
                total.append(out[0].numel() * m.in_channels * m.kernel_size[0] ** 2)
            elif isinstance(m, nn.Linear):
                total.append(m.in_features * m.out_features * out[0].numel() // m.out_features)
            elif isinstance(m, nn.LSTM):
                total.append(out.shape[1] * 4 * m.hidden_size * (m.input_size + m.hidden_size))
        hs = [m.register_forward_hook(hook) for m in model.modules()]
        with torch.no_grad():
            model(x)
        for h in hs:
            h.remove()
        return sum(total)

    for cm, data in (cnn, lstm):
        assert cm.macs_per_sample == hooked(cm.module, data.x_test[:1])


@pytest.mark.parametrize("which", ["cnn", "lstm"])
def test_max_batch_is_exact(which, cnn, lstm):
    cm, data = cnn if which == "cnn" else lstm
    n = cm.max_batch
    x = cm.quantize_input(data.x_test[: n + 1])
    low = cm.lower(x[:n])  # the largest batch lowers for real...
    assert low.batch == n and len(low.builder.commands) <= cm.config.prog_depth
    with pytest.raises(DoesNotFit, match="short by"):  # ...and one more does not
        cm.lower(x)


def test_weights_beyond_the_scratchpad_run_as_several_programs():
    """16 layers whose weights overflow tiny's weight scratchpad: the layers are grouped, in
    order, as many per program as fit (counted here from the descriptors), and the programs run
    one after the other on one activation scratchpad equal the integer twin."""
    from hwaccel.generators.accel.model import run_program

    cfg = PRESETS["tiny"]
    layers = [nn.Conv2d(8 if i else 1, 8, 3, padding=1) for i in range(16)]
    model = nn.Sequential(*layers).eval()
    per = descriptor(cfg.conv, ConvLayer(8, 8, 8, 8, 3, padding=1))
    first = descriptor(cfg.conv, ConvLayer(8, 8, 1, 8, 3, padding=1))
    words = [first["weight_words"] + first["blocks"]] + [per["weight_words"] + per["blocks"]] * 15
    groups, used = [[]], 0
    for i, n in enumerate(words):
        if used + n > cfg.wgt_depth:
            groups, used = [*groups, []], 0
        groups[-1].append(str(i))
        used += n
    assert len(groups) > 1
    x = torch.randn(3, 1, 8, 8)
    cm = hwaccel.compile(model, x, preset="tiny")
    low = cm.lower(cm.quantize_input(x))
    assert [list(p.layers) for p in low.programs] == groups
    assert low.builder.commands is None  # no single program to run by mistake
    assert low.host_words == sum(p.wgt_top + len(p.commands) for p in low.programs[1:])
    act = low.builder.act
    for part in low.loads():
        res = run_program(cfg, act, part.wgt, part.commands)
        assert res.done and not res.error
        act = res.act
    np.testing.assert_array_equal(low.ints(act), cm.int8_forward(cm.quantize_input(x)))
    assert f"runs as {len(groups)} programs" in cm.describe()
    assert np.array_equal(cm.execute("golden", x).int_logits, low.ints(act))


def test_a_linear_too_wide_for_the_scratchpad_splits_its_inputs_by_the_conv_before_it():
    """PyTorch's MNIST example's shape in small: a Linear over a flattened 8 x 8 x 32 map is 512
    K words on tiny's four lanes, and one output block's weights (513 words) exceed its 512. The
    conv before it splits into two groups of 16 channels, the Linear into one over each group's
    flatten and their add (as the fc1 of the full example, 9,216 inputs, runs on ecp5_128 and
    ecp5); golden equals the twin and the RTL golden. Over the model's input, whose producer
    cannot split, the shortfall is named."""
    from compile_checks import golden_twin_float, rtl_equals_golden

    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 32, 1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2048, 4)).eval()
    x = torch.randn(64, 3, 8, 8)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    q = {op.name: op for op in cm.qgraph.ops}
    assert [q[f"0.out{g}"].w.shape[0] for g in (0, 1)] == [16, 16]
    assert [q[f"3.cat{g}"].w.shape[1] for g in (0, 1)] == [1024, 1024]
    assert q["3"].inputs == ("3.cat0", "3.cat1")
    golden_twin_float(cm, model, x[:8], 0.1)
    assert len(cm.lower(cm.quantize_input(x[:2])).programs) == 2
    rtl_equals_golden(cm, x[:2])
    with pytest.raises(DoesNotFit, match=r"the weights of layer '1' do not fit .* short by 1 "):
        hwaccel.compile(nn.Sequential(nn.Flatten(), nn.Linear(2048, 4)).eval(),
                        torch.randn(2, 32, 8, 8), preset="tiny")


def test_a_pointwise_conv_wider_than_the_engine_runs_as_a_gemm():
    """tiny's conv engine takes 8 output and 12 input channels and rows of 8 pixels: a 1x1
    conv into 16 channels and one out of them run as GEMMs of their 64 pixels (M = 64), one a
    sample on one copy of the weights, and so do 1x1 convs over rows of 12; golden equals the
    integer twin. A 3x3 conv into 16 channels or over rows of 12 stays refused by name."""
    from hwaccel.generators.accel.isa import Op
    from hwaccel.generators.accel.model import decode

    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 1),
                          nn.ReLU(), nn.Conv2d(16, 8, 1)).eval()
    x = torch.randn(3, 1, 8, 8)
    cm = hwaccel.compile(model, x, preset="tiny")
    low = cm.lower(cm.quantize_input(x))
    [prog] = low.programs
    ops = [decode(cfg, c) for c in prog.commands]
    gemms = [d for d in ops if d["op"] == Op.GEMM]
    assert len(gemms) == 6 and {d["count"] for d in gemms} == {64}
    # each layer's three samples on one copy of its weights
    assert [len({d["wgt"] for d in gemms[i:i + 3]}) for i in (0, 3)] == [1, 1]
    assert gemms[0]["wgt"] != gemms[3]["wgt"]
    assert np.array_equal(cm.execute("golden", x).int_logits,
                          cm.int8_forward(cm.quantize_input(x)))
    assert cm.describe().count("GEMM of its pixels per sample (a 1x1 conv beyond the conv "
                               "engine's channels or rows)") == 2
    # (not the first layer: the host's im2col patches run that as a GEMM, test_compiler_im2col)
    wide3 = nn.Sequential(nn.Conv2d(1, 4, 1), nn.Conv2d(4, 16, 3, padding=1)).eval()
    with pytest.raises(LoweringError, match=r"layer '1' cannot run on accel_tiny: cout must be "
                                            r"at most 8"):
        hwaccel.compile(wide3, x, preset="tiny")
    # rows of 12 pixels, wider than tiny's line buffer (8): GEMMs of 24 rows, 3x3 refused
    x = torch.randn(3, 2, 2, 12)
    rows = nn.Sequential(nn.Conv2d(2, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1)).eval()
    cm = hwaccel.compile(rows, x, preset="tiny")
    gemms = [d for d in (decode(cfg, c) for c in cm.lower(cm.quantize_input(x)).programs[0]
                         .commands) if d["op"] == Op.GEMM]
    assert len(gemms) == 6 and {d["count"] for d in gemms} == {24}
    assert np.array_equal(cm.execute("golden", x).int_logits,
                          cm.int8_forward(cm.quantize_input(x)))
    with pytest.raises(LoweringError, match=r"width must be at most 8"):
        hwaccel.compile(nn.Sequential(nn.Conv2d(2, 4, 1), nn.Conv2d(4, 4, 3, padding=1)).eval(), x,
                        preset="tiny")


def test_a_linear_over_a_map_beyond_one_engine_layer_runs_as_a_gemm():
    """A Linear over a flattened 3 x 3 map runs as one CONV whose kernel covers the map where
    the engine takes it; into 10 outputs (tiny's engine takes 8) it runs as a GEMM of the map's
    words, as a classifier over a map wider than the engine's weight memory does on `default`.
    The RTL equals golden, and golden the twin."""
    from compile_checks import rtl_equals_golden

    torch.manual_seed(2)
    x = torch.randn(16, 3, 6, 6)
    for n, runs in ((8, "CONV (kernel covers the map)"), (10, "GEMM (whole batch)")):
        model = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Flatten(),
                              nn.Linear(36, n)).eval()
        cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
        assert runs in cm.describe()
        rtl_equals_golden(cm, x[:2])


def test_a_linear_whose_single_output_block_does_not_fit_is_named_with_the_shortfall():
    """2,100 inputs are 525 K words on tiny's 4 lanes: one output block's weights and its
    requantizer word are 526 words, more than the whole weight scratchpad."""
    cfg = PRESETS["tiny"]
    model = nn.Sequential(nn.Linear(2100, 4)).eval()
    with pytest.raises(DoesNotFit) as info:
        hwaccel.compile(model, torch.randn(2, 2100), preset="tiny")
    assert str(info.value) == (
        f"the weights of layer '0' do not fit the weight scratchpad of accel_tiny "
        f"({cfg.wgt_depth} words) even one output block at a time (526 words: 525 weight "
        f"words and a requantizer word); short by {526 - cfg.wgt_depth} words")


def test_a_linear_whose_single_output_word_does_not_fit_is_named_with_the_shortfall():
    """On tiny_4x2 a word is two blocks of two channels, and a part of a GEMM's outputs whole
    words: 1,200 inputs are 300 K words, one block's weights 301 words, which fit the weight
    scratchpad, but a word's two blocks are 602, which do not."""
    cfg = MODEL_PRESETS["tiny_4x2"]
    assert cfg.word_beats == 2 and 301 <= cfg.wgt_depth < 602
    model = nn.Sequential(nn.Linear(1200, 4)).eval()
    with pytest.raises(DoesNotFit) as info:
        hwaccel.compile(model, torch.randn(2, 1200), preset=cfg)
    assert str(info.value) == (
        f"the weights of layer '0' do not fit the weight scratchpad of accel_tiny_4x2 "
        f"({cfg.wgt_depth} words) even one output word at a time (2 blocks of 2 channels, 602 "
        f"words: each 300 weight words and a requantizer word); short by "
        f"{602 - cfg.wgt_depth} words")


def test_activations_that_do_not_fit_name_the_tensor():
    cfg = PRESETS["tiny"]
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1)).eval()
    cm = hwaccel.compile(model, torch.randn(2, 1, 8, 8), preset="tiny")
    x = cm.quantize_input(torch.randn(cfg.act_depth, 1, 8, 8))
    with pytest.raises(DoesNotFit, match=r"tensor '(input|0 output)' \(\d+ words\) does not fit "
                                         r"the activation scratchpad of accel_tiny .* short by"):
        cm.lower(x[: cm.max_batch * 4])


def test_engine_limits_name_the_layer():
    most = PRESETS["default"].conv.max_cout
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Conv2d(2, most + 1, 3)).eval()
    with pytest.raises(LoweringError, match=rf"layer '1' cannot run on accel_default: cout must "
                                            rf"be at most {most} \(max_cout"):
        hwaccel.compile(model, torch.randn(1, 1, 10, 10))
    # (kernels up to 2 k - 1 run as a stack of shifted copies and a k x k conv, split_kernels)
    k = PRESETS["default"].conv.max_kernel
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 2 * k)).eval()
    with pytest.raises(LoweringError, match=rf"layer '1' .* kernel\w* must be at most {k}"):
        hwaccel.compile(model, torch.randn(1, 1, 2 * k + 8, 2 * k + 8))
    with pytest.raises(LoweringError, match=r"layer 'rnn.0' is an LSTM and accel_ecp5 has no "
                                            r"LSTM cell"):
        hwaccel.compile(StackedLstm().eval(), torch.randint(0, 40, (1, 5)), preset="ecp5")
    wide = nn.Sequential(nn.LSTM(64, 65, batch_first=True)).eval()
    with pytest.raises(LoweringError, match=r"layer '0' has hidden_size 65 and the LSTM cell of "
                                            r"accel_default runs hidden_size up to 64"):
        hwaccel.compile(wide, torch.randn(1, 5, 64))


def test_bad_inputs_are_named(lstm):
    lm, _ = lstm
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10000\), not 10000"):
        lm.quantize_input(np.full((1, 16), 10_000))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 16\)"):
        lm.quantize_input(np.zeros((1, 15), dtype=np.int64))
    with pytest.raises(ValueError, match=r"x_int must hold token ids in \[0, 9999\], not -1"):
        lm.lower(np.full((1, 16), -1))
    with pytest.raises(ValueError, match=r"x_int must hold int8 values .* not 200\.\.200"):
        hwaccel.compile(sequential(), torch.randn(1, 1, 8, 8)).lower(np.full((1, 1, 8, 8), 200))
    with pytest.raises(ValueError, match="preset must be one of"):
        hwaccel.compile(sequential(), torch.randn(1, 1, 8, 8), preset="huge")


def test_import_stays_light():
    """``hwaccel.compile`` is there, and ``import hwaccel`` alone loads neither torch nor the
    runtime."""
    assert hwaccel.compile is hwaccel.runtime.runnable.compile
    code = ("import sys, hwaccel; print(sorted({'torch', 'hwaccel.runtime', 'hwaccel.compiler'}"
            " & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
