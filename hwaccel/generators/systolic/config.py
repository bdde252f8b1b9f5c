"""Configuration of the systolic-array generator."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...config import check_choice, check_int, check_name
from ...hdl.dsp import MULT_LATENCY
from ...numerics import IntFormat, acc_bits_for, max_reduction

__all__ = ["SystolicConfig", "PRESETS", "DATAFLOWS"]

DATAFLOWS = ("os", "ws")


@dataclass(frozen=True)
class SystolicConfig:
    """An R x C int8 systolic array.

    Parameters
    ----------
    rows, cols : int
        Array size R x C (any values >= 1, chosen independently).
    dataflow : ``"os"`` or ``"ws"``
        Output-stationary (each PE owns one output and accumulates over K) or weight-stationary
        (each PE holds one weight; partial sums flow down the columns).
    in_bits : int
        Width of the signed activation and weight operands.
    acc_bits : int
        Width of the signed accumulator. For OS it bounds the reduction length, see
        :attr:`max_k`; for WS it must hold a column's sum of ``rows`` products.
    name : str
        Preset name (the slug is ``systolic_<name>``).
    """

    rows: int = 16
    cols: int = 16
    dataflow: str = "os"
    in_bits: int = 8
    acc_bits: int = 32
    name: str = "custom"

    kind = "systolic"

    def __post_init__(self):
        check_int("rows", self.rows, min=1, max=256)
        check_int("cols", self.cols, min=1, max=256)
        check_choice("dataflow", self.dataflow, DATAFLOWS)
        check_int("in_bits", self.in_bits, min=2, max=18)
        check_int("acc_bits", self.acc_bits, min=2, max=64)
        check_name(self.name)
        need = self.min_acc_bits
        if self.acc_bits < need:
            what = ("one product" if self.dataflow == "os"
                    else f"a column sum of {self.rows} products")
            raise ValueError(
                f"acc_bits must be at least {need} to hold {what} of {self.in_bits}-bit operands,"
                f" not {self.acc_bits!r}"
            )

    # --- derived sizes -------------------------------------------------------------------------
    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    @property
    def operand(self) -> IntFormat:
        return IntFormat(self.in_bits)

    @property
    def accumulator(self) -> IntFormat:
        return IntFormat(self.acc_bits)

    @property
    def min_acc_bits(self) -> int:
        k = 1 if self.dataflow == "os" else self.rows
        return acc_bits_for(k, self.operand, self.operand)

    @property
    def max_k(self) -> int:
        """Longest reduction one OS tile can accumulate without overflow (WS: a fold, ``rows``)."""
        if self.dataflow == "ws":
            return self.rows
        return max_reduction(self.acc_bits, self.operand, self.operand)

    @property
    def macs(self) -> int:
        return self.rows * self.cols

    @property
    def mult_latency(self) -> int:
        """Cycles from a PE's operands to its product (operand, product and fabric registers;
        the first two inside the DSP block on ECP5; see :mod:`hwaccel.hdl.dsp`)."""
        return MULT_LATENCY

    @property
    def result_depth(self) -> int:
        """Rows of result buffering. OS: two tiles, so one drains while the next completes.
        WS: the array's latency plus slack, so a stream of activations never waits on credits."""
        return 2 * self.rows if self.dataflow == "os" else self.rows + self.mult_latency + 4

    def derived(self) -> dict:
        return {"macs": self.macs, "max_k": self.max_k, "result_depth": self.result_depth,
                "mult_latency": self.mult_latency}

    def with_(self, **changes) -> SystolicConfig:
        return replace(self, **changes)

    def build(self):
        from .array import SystolicArray

        return SystolicArray(self)


def _preset(rows: int, cols: int, dataflow: str) -> SystolicConfig:
    return SystolicConfig(rows=rows, cols=cols, dataflow=dataflow, name=f"{dataflow}_{rows}x{cols}")


PRESETS: dict[str, SystolicConfig] = {
    c.name: c
    for c in (
        _preset(r, c, df)
        for df in DATAFLOWS
        for (r, c) in ((1, 1), (3, 5), (8, 8), (16, 16))
    )
}
