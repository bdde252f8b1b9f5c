"""Host transfers of a compiled batch: the words and bits the host moves to run it.

What the host writes before each program (:meth:`hwaccel.compiler.lowered.Lowered.loads`, the
writes of :func:`hwaccel.generators.accel.host.load_writes`): the activation image (the inputs)
with the first program, then every program's weight words and command words; what it reads
back: the scratchpad span that holds the outputs (:attr:`~hwaccel.compiler.lowered.Lowered.
span`). Each word is as wide as its memory's word (activation, weight, command).
"""

from __future__ import annotations

__all__ = ["host_transfer"]


def host_transfer(cfg, lowered) -> dict:
    """``{"words", "bits", "act_words", "weight_words", "command_words", "output_words"}``
    of running ``lowered`` (a :class:`~hwaccel.compiler.lowered.Lowered`) on ``cfg``."""
    from ..generators.accel.isa import command_layout

    act = wgt = cmd = 0
    for load in lowered.loads():
        act += load.act_top
        wgt += load.wgt_top
        cmd += len(load.commands)
    out = lowered.span[1]
    bits = ((act + out) * cfg.act_bits + wgt * cfg.wgt_bits
            + cmd * command_layout(cfg).size)
    return {"words": act + wgt + cmd + out, "bits": bits, "act_words": act,
            "weight_words": wgt, "command_words": cmd, "output_words": out}
