"""Configuration of the LSTM cell engine (and of a stack of them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...config import check_choice, check_int, check_name
from ...numerics import INT8, MULT_BITS, SHIFT_MAX, acc_bits_for

__all__ = ["LstmConfig", "LstmStackConfig", "PRESETS", "OUTPUTS", "GATES"]

OUTPUTS = ("all", "last")
#: PyTorch's gate order along the 4H rows of ``weight_ih``/``weight_hh``.
GATES = ("i", "f", "g", "o")


@dataclass(frozen=True)
class LstmConfig:
    """One LSTM layer on ``lanes`` int8 MAC lanes, weights resident on chip.

    Parameters
    ----------
    input_size, hidden_size : int
        I and H. The gate product is ``4H x (I + H)`` per step. A cell generated with
        ``runtime_size`` runs any smaller sizes too (:meth:`run` gives such a run's config).
    lanes : int
        P parallel MAC lanes. Lane ``p`` owns lane rows ``p, p + P, p + 2P, ...`` (output
        stationary; lane row ``q`` is gate ``q % 4`` of unit ``q // 4``), ``slots = ceil(4H / P)``
        of them; any P >= 1 works, rows past 4H are padding.
    output : ``"all"`` or ``"last"``
        Emit ``h_t`` after every step, or only after a sequence's last step.
    acc_bits : int
        Width of the signed gate accumulators (int32 by default; at least what I or H products
        of int8 need).
    name : str
        Preset name (the slug is ``lstm_<name>``).
    """

    input_size: int = 64
    hidden_size: int = 64
    lanes: int = 16
    output: str = "all"
    acc_bits: int = 32
    name: str = "custom"

    kind = "lstm"

    def __post_init__(self):
        check_int("input_size", self.input_size, min=1, max=4096)
        check_int("hidden_size", self.hidden_size, min=1, max=1024)
        check_int("lanes", self.lanes, min=1, max=4096)
        check_choice("output", self.output, OUTPUTS)
        check_int("acc_bits", self.acc_bits, min=2, max=48)
        check_name(self.name)
        if self.acc_bits < self.min_acc_bits:
            raise ValueError(
                f"acc_bits must be at least {self.min_acc_bits} to hold a sum of "
                f"{max(self.input_size, self.hidden_size)} int8 products, not {self.acc_bits!r}")

    # --- derived sizes -------------------------------------------------------------------------
    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    @property
    def operand(self):
        return INT8

    @property
    def min_acc_bits(self) -> int:
        return acc_bits_for(max(self.input_size, self.hidden_size))

    @property
    def rows(self) -> int:
        """Gate rows, 4H (PyTorch order i, f, g, o)."""
        return 4 * self.hidden_size

    @property
    def slots(self) -> int:
        """Gate rows per lane, ``ceil(4H / P)``."""
        return math.ceil(self.rows / self.lanes)

    @property
    def weight_depth(self) -> int:
        """Words of each lane's weight memory (= weight beats per load): ``slots * (I + H)``."""
        return self.slots * (self.input_size + self.hidden_size)

    @property
    def macs_per_step(self) -> int:
        return self.rows * (self.input_size + self.hidden_size)

    @property
    def ideal_cycles_per_step(self) -> float:
        """``4H (I + H) / P``: every lane busy every cycle."""
        return self.macs_per_step / self.lanes

    @property
    def mult_bits(self) -> int:
        return MULT_BITS

    @property
    def shift_bits(self) -> int:
        return SHIFT_MAX.bit_length()

    def derived(self) -> dict:
        return {"rows": self.rows, "slots": self.slots, "weight_depth": self.weight_depth,
                "macs_per_step": self.macs_per_step,
                "ideal_cycles_per_step": self.ideal_cycles_per_step}

    def with_(self, **changes) -> LstmConfig:
        return replace(self, **changes)

    def run(self, input_size: int, hidden_size: int) -> LstmConfig:
        """The config of a run at ``input_size`` x ``hidden_size`` on this cell, whose sizes are
        the largest it runs: same lanes and accumulators, so its ``slots``, ``weight_depth``
        and cycle model are the run's.

        Raises
        ------
        ValueError
            Naming the size and the cell's limit, if a size is not in ``1 ..`` the config's.
        """
        for what, value, most in (("input_size", input_size, self.input_size),
                                  ("hidden_size", hidden_size, self.hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive integer, not {value!r}")
            if value > most:
                raise ValueError(f"{what} {value} is more than the LSTM cell of {self.slug} "
                                 f"runs: {what} at most {most}")
        return replace(self, input_size=input_size, hidden_size=hidden_size)

    def build(self):
        from .cell import LstmCell

        return LstmCell(self)


@dataclass(frozen=True)
class LstmStackConfig:
    """Layers of :class:`LstmConfig` chained through their streams (layer k's h is k+1's x).

    Parameters
    ----------
    input_size : int
        I of the first layer.
    hidden_sizes : tuple of int
        H of each layer (at least two).
    lanes : tuple of int
        P of each layer (same length as ``hidden_sizes``).
    output : ``"all"`` or ``"last"``
        Output mode of the top layer; every lower layer emits every step.
    name : str
        Preset name (the slug is ``lstm_stack_<name>``).
    """

    input_size: int = 64
    hidden_sizes: tuple = (64, 64)
    lanes: tuple = (256, 256)
    output: str = "last"
    name: str = "custom"

    kind = "lstm_stack"

    def __post_init__(self):
        # JSON sidecars carry tuples as lists; store tuples so the config stays hashable.
        for field in ("hidden_sizes", "lanes"):
            value = getattr(self, field)
            if not isinstance(value, (tuple, list)) or len(value) < 2:
                raise ValueError(f"{field} must be a sequence of at least two sizes, not {value!r}")
            object.__setattr__(self, field, tuple(value))
        if len(self.lanes) != len(self.hidden_sizes):
            raise ValueError(f"lanes must give one lane count per layer "
                             f"({len(self.hidden_sizes)}), not {self.lanes!r}")
        check_choice("output", self.output, OUTPUTS)
        check_name(self.name)
        _ = self.layers  # builds, and so validates, every layer's config

    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    @property
    def layers(self) -> tuple[LstmConfig, ...]:
        out, size = [], self.input_size
        top = len(self.hidden_sizes) - 1
        for k, (h, p) in enumerate(zip(self.hidden_sizes, self.lanes)):
            out.append(LstmConfig(input_size=size, hidden_size=h, lanes=p,
                                  output=self.output if k == top else "all",
                                  name=f"{self.name}_l{k}"))
            size = h
        return tuple(out)

    def derived(self) -> dict:
        return {f"layer{k}": c.derived() for k, c in enumerate(self.layers)}

    def build(self):
        from .stack import LstmStack

        return LstmStack(self)


PRESETS: dict[str, LstmConfig | LstmStackConfig] = {
    c.name: c
    for c in (
        LstmConfig(input_size=64, hidden_size=64, lanes=256, name="ref_p256"),
        LstmConfig(input_size=64, hidden_size=64, lanes=64, name="ref_p64"),
        LstmConfig(input_size=64, hidden_size=64, lanes=16, name="ref_p16"),
        LstmConfig(input_size=7, hidden_size=5, lanes=6, name="small_p6"),
        LstmConfig(input_size=3, hidden_size=2, lanes=1, output="last", name="tiny_p1"),
        LstmStackConfig(input_size=6, hidden_sizes=(5, 4), lanes=(1, 5), name="small"),
        LstmStackConfig(input_size=64, hidden_sizes=(64, 64), lanes=(256, 256), name="ref"),
    )
}
