"""What a pipeline register takes from a memory read port: the data, or in simulation with
:data:`RW_POISON` the data as a block RAM without read-during-write logic might give it; and
the data registers without a reset of the engine and of the accelerator's element-wise unit
(:func:`data_register`; with :data:`STALE_POISON` they start as all ones)."""

from __future__ import annotations

from amaranth.hdl import Mux, Shape, Signal

__all__ = ["NO_RW_CHECK", "RW_POISON", "STALE_POISON", "read_data", "data_register"]

#: The attributes of a memory whose reads never need the word written in the same cycle: Yosys
#: adds no read-during-write logic to it (on ECP5 a delayed write, an address compare and a
#: multiplexer on every bit after the block RAM). Each use states why no used read meets a write.
NO_RW_CHECK = {"no_rw_check": 1}

#: Simulation only (tests set it, :func:`hwaccel.formal.props.replaced`): a line-buffer row or
#: weight read in the cycle its word is written returns that word inverted, as a block RAM
#: without read-during-write logic may return any word. Results that stay exact over the tests'
#: random layers are the evidence (not a proof) that no read the engine uses meets a write.
RW_POISON = False

#: Simulation only, like :data:`RW_POISON`: every data register without a reset
#: (:func:`data_register`) starts as all ones instead of 0, as a register the units' reset does
#: not clear holds whatever it held. Results that stay exact are the evidence (not a proof)
#: that no such register is used before a word marked valid is written to it.
STALE_POISON = False


def data_register(shape, name: str) -> Signal:
    """A data register without a reset (see :data:`STALE_POISON`)."""
    shape, init = Shape.cast(shape), 0
    if STALE_POISON:
        init = -1 if shape.signed else (1 << shape.width) - 1
    return Signal(shape, name=name, reset_less=True, init=init)


def read_data(m, wr, rp, name):
    """``rp``'s data as the pipeline registers it (see :data:`RW_POISON`)."""
    if not RW_POISON:
        return rp.data
    hit = Signal(name=f"{name}_rw_hit")
    m.d.sync += hit.eq(wr.en & (wr.addr == rp.addr))
    return Mux(hit, ~rp.data, rp.data)
