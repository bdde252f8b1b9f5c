"""The driver's element-wise commands (:class:`~.driver.ProgramBuilder` inherits them): ADD and
MUL (:mod:`.isa`), their parameters in command fields.

A MUL's gate (one pixel of a map's channels, multiplied into every pixel: a squeeze-and-excitation
block's) is read in pairs of words, so it is stored as its ``n`` words and then its first word
again (:meth:`EltwiseCommands.gate`): the copy is an ADD of one word that is exactly its input.
"""

from __future__ import annotations

from ...numerics import MUL_SHIFT_MAX, AddRequant
from .command_words import ActTensor, encode
from .isa import Op

__all__ = ["EltwiseCommands", "COPY"]

#: The ADD that copies its first input exactly: ``(2 a + 0 b + 1) >> 1 = a``.
COPY = AddRequant(2, 0, 1)


def _tensors(**ts):
    for name, t in ts.items():
        if not isinstance(t, ActTensor):
            raise TypeError(f"{name} must be an ActTensor, not {t!r}")


def _fields(src2: int, p: AddRequant, relu: bool) -> dict:
    return {"src2": src2, "mult_a": p.multiplier_a, "mult_b": p.multiplier_b, "shift": p.shift,
            "relu": int(bool(relu))}


class EltwiseCommands:
    """ADD and MUL; the mixin of :class:`~.driver.ProgramBuilder` (``cfg``, ``alloc``,
    ``commands``)."""

    def add(self, a: ActTensor, b: ActTensor, p: AddRequant, *, relu: bool = False
            ) -> ActTensor:
        """ADD: ``add_requantize(a, b, p)`` (:func:`hwaccel.numerics.add_requantize`) of two
        tensors of one shape, element by element; returns a new tensor of that shape."""
        if not isinstance(p, AddRequant):
            raise TypeError(f"p must be an AddRequant (numerics.add_params), not {p!r}")
        _tensors(a=a, b=b)
        if (a.channels, a.height, a.width) != (b.channels, b.height, b.width):
            raise ValueError(f"add needs two tensors of one shape, not {a.channels}x{a.height}x"
                             f"{a.width} and {b.channels}x{b.height}x{b.width} (CxHxW)")
        out = self.alloc(a.channels, a.height, a.width)
        self.commands.append(encode(self.cfg, Op.ADD, src=a.addr, dst=out.addr, count=a.words,
                                    add=_fields(b.addr, p, relu)))
        return out

    def copy_word(self, src: int, dst: int, words: int = 1) -> None:
        """An ADD that copies ``words`` words from ``src`` to ``dst`` exactly (:data:`COPY`)."""
        self.commands.append(encode(self.cfg, Op.ADD, src=src, dst=dst, count=words,
                                    add=_fields(src, COPY, False)))

    def gate(self, g: ActTensor) -> ActTensor:
        """``g`` (one pixel) stored as a MUL reads a gate: a copy of its words with its first
        word again after them (two ADDs: :data:`COPY`); returns the copy (its ``words`` are the
        pixel's, the word after them is reserved)."""
        _tensors(g=g)
        if (g.height, g.width) != (1, 1):
            raise ValueError(f"a gate is one pixel, not {g.height} x {g.width}")
        out = self.alloc(g.channels + self.cfg.lanes, 1, 1)   # the pixel and one word
        self.copy_word(g.addr, out.addr, g.words)
        self.copy_word(g.addr, out.addr + g.words)
        return ActTensor(out.addr, g.channels, 1, 1, g.lanes)

    def mul(self, a: ActTensor, b: ActTensor, shift: int, *, relu: bool = False,
            gate: bool = False) -> ActTensor:
        """MUL: ``mul_requantize(a, b, shift)`` (:func:`hwaccel.numerics.mul_requantize`)
        element by element of two tensors of one shape, or with ``gate`` of ``a`` and one
        pixel ``b`` of its channels (stored by :meth:`gate`), that pixel times every pixel of
        ``a``; returns a new tensor of ``a``'s shape. Needs ``AccelConfig.elt_mul``."""
        if not self.cfg.elt_mul:
            raise ValueError(f"{self.cfg.slug} has no element-wise product (elt_mul): MUL "
                             f"would be an illegal opcode")
        if not (isinstance(shift, int) and 1 <= shift <= MUL_SHIFT_MAX):
            raise ValueError(f"shift must be an integer in [1, {MUL_SHIFT_MAX}], not {shift!r}")
        _tensors(a=a, b=b)
        want = (a.channels, 1, 1) if gate else (a.channels, a.height, a.width)
        if (b.channels, b.height, b.width) != want:
            kind = f"a gate of one pixel of a's {a.channels} channels" if gate else (
                f"a tensor of a's shape ({a.channels}x{a.height}x{a.width})")
            raise ValueError(f"mul needs {kind}, not {b.channels}x{b.height}x{b.width} (CxHxW)")
        out = self.alloc(a.channels, a.height, a.width)
        fields = {"src2": b.addr, "mult_a": 0, "mult_b": b.groups if gate else 0,
                  "shift": shift, "relu": int(bool(relu))}
        self.commands.append(encode(self.cfg, Op.MUL, src=a.addr, dst=out.addr, count=a.words,
                                    add=fields))
        return out
