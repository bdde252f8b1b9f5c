"""A compiled model against its references, for the compiler's model tests: the golden
interpreter equals the integer twin bit for bit (and the twin is not mostly zeros), the twin
dequantized is within ``rel`` of the float model's largest output, and the float IR on XLA
matches the float model; and the RTL against golden."""

from __future__ import annotations

import numpy as np
import torch


def golden_twin_float(cm, model, x, rel: float):
    """Run ``x`` through ``cm`` and ``model``; assert as the module says. Returns the
    quantized input and the twin's integers."""
    x_int = cm.quantize_input(x)
    gold = cm.execute("golden", x)
    twin = cm.int8_forward(x_int)
    np.testing.assert_array_equal(gold.int_logits, twin)
    assert np.count_nonzero(twin) > twin.size // 4
    with torch.no_grad():
        ref = model(x).numpy()
    err = np.abs(twin * cm.qgraph.output_scale - ref).max()
    assert err < rel * np.abs(ref).max(), err
    np.testing.assert_allclose(cm.run("xla", x), ref, rtol=1e-4, atol=1e-5)
    return x_int, twin


def rtl_equals_golden(cm, x) -> None:
    """The RTL (Verilator harness) runs ``x`` bit-exact to golden, and golden to the twin."""
    gold = cm.execute("golden", x)
    np.testing.assert_array_equal(gold.int_logits, cm.int8_forward(cm.quantize_input(x)))
    np.testing.assert_array_equal(cm.execute("rtl", x).int_logits, gold.int_logits)


def _compiled(model, n: int, seed: int, preset: str, shape: tuple):
    import hwaccel

    x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))
    return hwaccel.compile(model, x[:2], preset=preset, calibration=x), x


def model_close(model, seed: int, preset: str = "tiny", shape: tuple = (3, 8, 8),
                rel: float = 0.1):
    """``model`` compiled for ``preset`` on 64 random inputs of ``shape`` (``seed``), then
    :func:`golden_twin_float` on 8 of them."""
    cm, x = _compiled(model, 64, seed, preset, shape)
    return golden_twin_float(cm, model, x[:8], rel)


def model_rtl_exact(model, seed: int, preset: str = "tiny", shape: tuple = (3, 8, 8)) -> None:
    """``model`` compiled for ``preset`` on 32 random inputs of ``shape`` (``seed``), then
    :func:`rtl_equals_golden` on 3 of them."""
    cm, x = _compiled(model, 32, seed, preset, shape)
    rtl_equals_golden(cm, x[:3])


def traced_equal_to_torch(model, x):
    """``model`` traced on ``x[:2]``; its float IR run in float64 on ``x`` equals the model's
    own float64 outputs (a copy of it: ``model`` stays as it is). Returns the graph."""
    import copy

    from hwaccel.compiler.reference import forward as float_forward
    from hwaccel.compiler.trace import trace

    graph = trace(model, x[:2])
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)
    return graph
