"""What a pipeline register takes from a memory read port: the data, or in simulation with
:data:`RW_POISON` the data as a block RAM without read-during-write logic might give it."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

__all__ = ["RW_POISON", "read_data"]

#: Simulation only (tests set it, :func:`hwaccel.formal.props.replaced`): a line-buffer row or
#: weight read in the cycle its word is written returns that word inverted, as a block RAM
#: without read-during-write logic may return any word. Results that stay exact over the tests'
#: random layers are the evidence (not a proof) that no read the engine uses meets a write.
RW_POISON = False


def read_data(m, wr, rp, name):
    """``rp``'s data as the pipeline registers it (see :data:`RW_POISON`)."""
    if not RW_POISON:
        return rp.data
    hit = Signal(name=f"{name}_rw_hit")
    m.d.sync += hit.eq(wr.en & (wr.addr == rp.addr))
    return Mux(hit, ~rp.data, rp.data)
