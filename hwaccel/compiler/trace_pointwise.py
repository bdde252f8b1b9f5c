"""The tracer's readers of pointwise activations: ``nn.SiLU`` / ``F.silu``, ``nn.Tanh`` /
``torch.tanh``, ``nn.Hardswish``, ``nn.Hardsigmoid``, ``nn.Softplus``, ``nn.Mish``, ``nn.ELU``,
``nn.CELU``, ``nn.SELU``, ``nn.LogSigmoid``, ``nn.Softsign``, a sigmoid that another op
reads (the model's last sigmoid stays a host head) and (from :meth:`.trace_ops.LayerReaders.clamp`)
a clamp between two numbers not from 0, each an :class:`~.ir_attention.Pointwise`:
a table on the GELU unit (:mod:`hwaccel.numerics.pointwise`). A mixin of
:class:`hwaccel.compiler.trace._Reader`.
"""

from __future__ import annotations

import functools

from ..numerics import pointwise_rising
from . import ir
from .errors import UnsupportedOp
from .trace_ops import call_args

__all__ = ["PointwiseReaders"]


def _modules() -> dict:
    """module type -> (function name, its parameters read from the module)."""
    import torch.nn as nn

    none = lambda m: ()  # noqa: E731
    return {nn.SiLU: ("silu", none), nn.Tanh: ("tanh", none),
            nn.Hardswish: ("hardswish", none), nn.Hardsigmoid: ("hardsigmoid", none),
            nn.Softplus: ("softplus", lambda m: (m.beta, m.threshold)), nn.Mish: ("mish", none),
            nn.ELU: ("elu", lambda m: (m.alpha,)), nn.CELU: ("celu", lambda m: (m.alpha,)),
            nn.SELU: ("selu", none), nn.LogSigmoid: ("logsigmoid", none),
            nn.Softsign: ("softsign", none)}


@functools.cache
def _functions() -> dict:
    """function or method -> (function name, its parameters' names and defaults)."""
    import torch
    import torch.nn.functional as F

    plain: dict = {}
    out = {}
    for fn, targets in (("silu", (F.silu,)), ("tanh", (torch.tanh, F.tanh, "tanh")),
                        ("hardswish", (F.hardswish,)), ("hardsigmoid", (F.hardsigmoid,)),
                        ("mish", (F.mish,)), ("selu", (F.selu, torch.selu)),
                        ("logsigmoid", (F.logsigmoid,)), ("softsign", (F.softsign,))):
        out.update({t: (fn, plain) for t in targets})
    out[F.softplus] = ("softplus", {"beta": 1.0, "threshold": 20.0})
    out.update({t: ("elu", {"alpha": 1.0}) for t in (F.elu, F.elu_)})
    out.update({t: ("celu", {"alpha": 1.0}) for t in (F.celu, torch.celu)})
    return out


class PointwiseReaders:
    """Reads pointwise activation modules, functions and methods into ``Pointwise`` ops."""

    def pointwise_module(self, node, where: str, m) -> bool:
        """Read module ``m`` if it is a pointwise activation; whether it was one."""
        spec = _modules().get(type(m))
        if spec is None:
            return False
        fn, params = spec
        self.pointwise_of(node, where, fn, tuple(params(m)))
        return True

    def pointwise_call(self, node, t, where: str) -> bool:
        """Read the function or method ``t`` if it is a pointwise activation; whether it was."""
        try:
            spec = _functions().get(t)
        except TypeError:   # an unhashable target
            return False
        if spec is None:
            return False
        fn, defaults = spec
        a = call_args(node, ("input", *defaults), defaults)
        self.pointwise_of(node, where, fn, tuple(a[k] for k in defaults))
        return True

    def pointwise_of(self, node, where: str, fn: str, params: tuple) -> None:
        try:
            pointwise_rising(fn, params)   # checks the parameters
        except ValueError as exc:
            raise UnsupportedOp(f"{fn} parameters", where, str(exc)) from None
        params = tuple(float(v) for v in params)
        self.unary(node, where, lambda name: ir.Pointwise(name, fn, params))

    def sigmoid_read(self, head) -> str:
        """The value of a sigmoid head (:class:`~.trace_ops.Head`) that an op reads: the
        sigmoid as a table, in place of the head."""
        return self.put(ir.Pointwise(self.fresh(head.node), "sigmoid", inputs=(head.value,)))
