"""A stack of LSTM cell engines chained through their streams (layer k's h is layer k+1's x)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .cell import LstmCell, param_layout, vector_layout, weight_layout
from .config import LstmStackConfig

__all__ = ["LstmStack"]


class LstmStack(wiring.Component):
    """Layers of :class:`~.cell.LstmCell` built from an :class:`LstmStackConfig`.

    The lower layers emit every step, so the h stream of layer k is exactly the x stream that
    layer k+1 consumes (same ``{data, last}`` layout, h at scale 2**-7); back-pressure from the
    upper layer stalls the lower one through the ordinary ready signal.

    Members
    -------
    weights<k>, params<k> : layer k's load streams (see :class:`~.cell.LstmCell`)
    x : ``In`` layer 0's input stream
    h : ``Out`` the top layer's output stream

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`LstmStackConfig`.
    """

    def __init__(self, config: LstmStackConfig):
        if not isinstance(config, LstmStackConfig):
            raise TypeError(f"config must be an LstmStackConfig, not {config!r}")
        self.config = config
        layers = config.layers
        members = {}
        for k, cfg in enumerate(layers):
            members[f"weights{k}"] = In(stream.Signature(weight_layout(cfg)))
            members[f"params{k}"] = In(stream.Signature(param_layout(cfg)))
        members["x"] = In(stream.Signature(vector_layout(config.input_size)))
        members["h"] = Out(stream.Signature(vector_layout(layers[-1].hidden_size)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cells = [LstmCell(cfg) for cfg in self.config.layers]
        for k, cell in enumerate(cells):
            m.submodules[f"layer{k}"] = cell
            wiring.connect(m, wiring.flipped(getattr(self, f"weights{k}")), cell.weights)
            wiring.connect(m, wiring.flipped(getattr(self, f"params{k}")), cell.params)
        wiring.connect(m, wiring.flipped(self.x), cells[0].x)
        for lower, upper in zip(cells, cells[1:]):
            wiring.connect(m, lower.h, upper.x)
        wiring.connect(m, cells[-1].h, wiring.flipped(self.h))
        return m
