"""Random small DAG models drawn from the supported operators (branches and residual adds,
depthwise, grouped, dilated and non-square convolutions, per-side padding, average pools, batch
norms of their own) compile, and the integer twin equals the plain numpy reference of the
integer IR exactly; where the preset runs the model, the golden program equals them too.
Hypothesis draws the models (seeded: the failing spec is printed)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwaccel
from hwaccel.compiler import LoweringError
from hwaccel.compiler.qreference import forward as qforward
from hwaccel.compiler.random_cases import RandomDag
from hwaccel.generators.accel.config import PRESETS
from hwaccel.generators.accel.driver import ProgramBuilder
from hwaccel.generators.accel.model import run_program

MAX_K = PRESETS["default"].conv.max_kernel
MAX_PAD = PRESETS["default"].conv.max_pad  # per side
HAS_ADD_AVG = hasattr(ProgramBuilder, "add") and hasattr(ProgramBuilder, "avgpool")


@st.composite
def models(draw):
    c = cin = draw(st.integers(1, 4))
    h0 = h = draw(st.integers(5, 12))
    w0 = w = draw(st.integers(5, 12))
    spec = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "res", "res", "dw", "avg", "fork", "gconv",
                                     "dil", "bn"]))
        if kind == "gconv":   # groups dividing both channel counts
            g = draw(st.sampled_from([d for d in (2, 3, 4) if c % d == 0] or [1]))
            c = g * draw(st.integers(1, 3))
            spec.append(("gconv", c, g, draw(st.booleans())))
            continue
        if kind == "dil":
            d = draw(st.integers(2, MAX_K - 1))
            if min(h, w) <= d:
                continue
            c = draw(st.integers(1, 8))
            spec.append(("dil", c, d, draw(st.booleans())))
            h, w = h - d, w - d
            continue
        if kind == "bn":
            spec.append(("bn", draw(st.booleans())))
            continue
        if kind == "conv":
            kh, kw = draw(st.integers(1, min(MAX_K, h))), draw(st.integers(1, min(MAX_K, w)))
            sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
            t = draw(st.integers(0, min(kh - 1, MAX_PAD)))
            b = draw(st.integers(0, min(kh - 1 - t, MAX_PAD)))
            left = draw(st.integers(0, min(kw - 1, MAX_PAD)))
            r = draw(st.integers(0, min(kw - 1 - left, MAX_PAD)))
            oh, ow = (h + t + b - kh) // sh + 1, (w + left + r - kw) // sw + 1
            c = draw(st.integers(1, 8))
            spec.append(("conv", c, (kh, kw), (sh, sw), (t, left, b, r), draw(st.booleans())))
            h, w = oh, ow
        elif kind == "avg":
            k = draw(st.integers(2, 3))
            if h // k < 1 or w // k < 1:
                continue
            spec.append(("avg", k))
            h, w = h // k, w // k
        elif kind == "fork":
            spec.append(("fork",))
        elif kind == "dw":  # 3 x 3, stride 1, one pixel of padding a side
            spec.append(("dw", (1, 1), (1, 1, 1, 1), draw(st.booleans())))
        else:
            spec.append((kind, draw(st.booleans())))
    head = draw(st.sampled_from(["gap", "flat"]))
    seed = draw(st.integers(0, 2**16))
    return cin, (h0, w0), spec, head, seed


@settings(max_examples=14, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_random_graphs_twin_equals_reference(drawn):
    cin, size, spec, head, seed = drawn
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(40, cin, *size, generator=gen)
    model = RandomDag(cin, spec, head).eval()
    with torch.no_grad():
        model(x[:1])  # the lazy Linear takes its size
    cm = hwaccel.compile(model, x[:2], calibration=x, strict=False)
    x_int = cm.quantize_input(x[:4])
    twin = cm.int8_forward(x_int)
    np.testing.assert_array_equal(twin, qforward(cm.qgraph, x_int), err_msg=str(drawn))
    if cm.refusal is not None:
        assert isinstance(cm.refusal, LoweringError), (drawn, cm.refusal)
        assert not HAS_ADD_AVG, (drawn, cm.refusal)
        return
    low = cm.lower(x_int)
    b = low.builder
    res = run_program(cm.config, b.act, b.wgt, b.commands)
    assert res.done and not res.error, (drawn, res.cause, res.pc)
    np.testing.assert_array_equal(low.ints(res.act), twin, err_msg=str(drawn))

