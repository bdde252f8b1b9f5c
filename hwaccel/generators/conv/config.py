"""Configuration of the convolution engine (and of the max-pool stage chained after it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

from ...config import check_bool, check_int, check_name
from ...numerics import MULT_BITS, SHIFT_MAX, IntFormat, acc_bits_for

__all__ = ["ConvConfig", "PoolConfig", "PRESETS"]


@dataclass(frozen=True)
class ConvConfig:
    """A line-buffered 2-D convolution engine with ``lanes x blocks`` MAC units.

    Parameters
    ----------
    lanes : int
        ``P_k``: elements of the flattened im2col window multiplied per cycle (the reduction
        parallelism; also the channels carried by one ``activations`` beat).
    block : int
        ``P_n``: output channels computed per cycle (one ``result`` beat carries ``block``).
    max_width, max_height : int
        Largest input feature map the line buffer holds.
    max_cin, max_cout : int
        Largest input / output channel counts (they size the weight memory).
    max_kernel : int
        Largest kernel height and width, 1 to 15 (a kernel is ``kernel_h x kernel_w``, each up
        to this). The line buffer holds ``row_slots`` (a power of two above it) rows, so up to 7
        costs 8 row memories and 8 to 15 costs 16: one limit for both axes keeps the config
        small, and a wide kernel costs only line-buffer columns and weight words.
    dw_max_kernel : int
        Largest depthwise kernel side, 1 to 7 (the depthwise window register is ``dw_kernel =
        min(dw_max_kernel, max_kernel)`` words a side; see :mod:`.engine`, "Depthwise mode").
        3, the default, holds MobileNetV1's and DS-CNN's kernels; 5 MobileNetV3's and
        EfficientNet's; 7 MCUNet's and ConvNeXt's. Above 3 a pixel issues only the chunks its
        kernel fills (:meth:`dw_issue`), so a 3 x 3 layer pays no more than on a 3 x 3
        register.
    max_weight_words : int or None
        Weight-memory words (``blocks x chunks`` of one layer, ``lanes x block`` int8 each).
        ``None``: enough for any layer within the other limits (``max_blocks x max_chunks``),
        which grows with the kernel's area; a smaller memory refuses, by name, the layers
        whose weights it cannot hold (large kernels over many channels).
    pool : bool
        Chain a 2x2 stride-2 max-pool stage after the engine (enabled per layer).
    requant_dsp : bool
        On an FPGA whose DSP block is the ECP5's MULT18X18D, the requantizer's two products a
        lane are blocks with their output register in use (:func:`hwaccel.hdl.dsp.
        product_register`; the same cycles). ``False`` leaves them multiplies for Yosys to
        map; an accelerator with ``lut_multipliers`` (LUT logic for them) turns it off.
    requant_dsp_blocks : int
        Without ``requant_dsp``, the requantizers of the first this many of the ``block``
        output channels still take two MULT18X18D each (the same cycles), the others staying
        LUT logic: for a part whose MACs leave some DSP blocks free (``ecp5_128``'s 12 of 156).
    product_register : bool
        Register each MAC product once more as it leaves its multiplier, a stage more in the
        pipeline (:data:`.perf.PRODUCT_STAGE`): on ECP5 the MULT18X18D's output register feeds
        a fabric register, so the route from the DSP row to the adder tree that sums a column
        of products gets a cycle of its own. ``False`` (the default) sums the products straight
        from the multipliers' output registers.
    name : str
        Preset name (the slug is ``conv_<name>``).
    """

    lanes: int = 16
    block: int = 16
    max_width: int = 28
    max_height: int = 28
    max_cin: int = 64
    max_cout: int = 64
    max_kernel: int = 3
    dw_max_kernel: int = 3
    max_weight_words: int | None = None
    pool: bool = True
    requant_dsp: bool = True
    requant_dsp_blocks: int = 0
    product_register: bool = False
    name: str = "custom"

    kind = "conv"

    def __post_init__(self):
        check_int("lanes", self.lanes, min=1, max=64)
        check_int("block", self.block, min=1, max=64)
        check_int("max_width", self.max_width, min=1, max=4096)
        check_int("max_height", self.max_height, min=1, max=4096)
        check_int("max_cin", self.max_cin, min=1, max=4096)
        check_int("max_cout", self.max_cout, min=1, max=4096)
        check_int("max_kernel", self.max_kernel, min=1, max=15)
        check_int("dw_max_kernel", self.dw_max_kernel, min=1, max=7)
        if self.max_weight_words is not None:
            # A GEMM tile (1x1 kernel) needs max_groups words a block.
            check_int("max_weight_words", self.max_weight_words,
                      min=self.max_groups * self.max_blocks, max=self.max_blocks * self.max_chunks)
        check_bool("pool", self.pool)
        check_bool("requant_dsp", self.requant_dsp)
        check_int("requant_dsp_blocks", self.requant_dsp_blocks, min=0, max=self.block)
        check_bool("product_register", self.product_register)
        check_name(self.name)

    # --- derived sizes -------------------------------------------------------------------------
    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    @property
    def operand(self) -> IntFormat:
        return IntFormat(8)

    @property
    def macs(self) -> int:
        return self.lanes * self.block

    @property
    def max_groups(self) -> int:
        """Activation beats per pixel at ``max_cin`` (``lanes`` channels per beat)."""
        return math.ceil(self.max_cin / self.lanes)

    @property
    def max_blocks(self) -> int:
        return math.ceil(self.max_cout / self.block)

    @property
    def max_chunks(self) -> int:
        """Most weight words one output block needs (one per (ky, kx, group) in the worst case)."""
        return self.max_kernel ** 2 * self.max_groups

    @property
    def weight_depth(self) -> int:
        """Weight-memory words: the most ``blocks x chunks`` of one layer."""
        if self.max_weight_words is None:
            return self.max_blocks * self.max_chunks
        return self.max_weight_words

    @property
    def row_slots(self) -> int:
        """Input rows the line buffer holds: a power of two (free wrap-around) above the largest
        kernel, so the input stream can fill the next row while a window is being read."""
        return 1 << self.max_kernel.bit_length()

    @property
    def max_pad(self) -> int:
        """Largest padding on one side: ``max_kernel // 2``, what TensorFlow's "same" puts on the
        bottom/right of an even kernel (a layer also keeps ``top + bottom < kernel_h`` and
        ``left + right < kernel_w``, so outputs never outgrow inputs)."""
        return self.max_kernel // 2

    @property
    def row_words(self) -> int:
        """Line-buffer words per row slot: padded columns x channel groups. Left plus right
        padding is below the kernel width, so ``max_kernel - 1`` columns cover any padding."""
        return (self.max_width + self.max_kernel - 1) * self.max_groups

    @property
    def dw_kernel(self) -> int:
        """Largest depthwise kernel side: ``min(dw_max_kernel, max_kernel)`` (the depthwise
        window register is ``dw_kernel x dw_kernel`` words; see :mod:`.engine`)."""
        return min(self.dw_max_kernel, self.max_kernel)

    @property
    def dw_beats(self) -> int:
        """Result beats of one depthwise pixel of a channel group: ``lanes // block`` when the
        lanes are a power-of-two multiple of the block (the group is a whole activation word
        of ``lanes`` channels, computed ``block`` channels a beat) and the parameter memory
        holds a group's ``k`` requantizers (``max_cout >= lanes``), else 1."""
        k = self.lanes // self.block
        whole = k > 1 and self.lanes == k * self.block and k & (k - 1) == 0
        return k if whole and self.max_blocks >= k else 1

    @property
    def dw_channels(self) -> int:
        """Channels of one depthwise channel group: ``block x dw_beats`` (``lanes`` when
        ``dw_beats > 1``), else ``min(lanes, block)``; a multiplier ``(k, n)`` takes channel
        ``n + h x block`` of window word ``k`` in the group's beat ``h``."""
        return self.lanes if self.dw_beats > 1 else min(self.lanes, self.block)

    @property
    def dw_chunks(self) -> int:
        """Cycles per output beat of a depthwise layer: the window register's
        ``dw_kernel**2`` taps, ``lanes`` per chunk."""
        return -(-self.dw_kernel ** 2 // self.lanes)

    @property
    def dw_trim(self) -> bool:
        """Whether a depthwise pixel issues (and a group loads) only the chunks its kernel
        fills: on a window register above 3 x 3 with one beat a pixel. On a 3 x 3 register a
        kernel fills nearly all of it (and those netlists stay as they were placed); with
        beats, each beat issues the register's ``dw_chunks``."""
        return self.dw_kernel > 3 and self.dw_beats == 1

    @cached_property
    def dw_taps(self) -> list[tuple[int, int]]:
        """The window-register position ``(row, column)`` of each tap slot ``p = c x lanes +
        k`` (lane ``k`` of chunk ``c``). A kernel sits in the register's top-right corner (rows
        ``0 .. KH-1``, columns ``dw_kernel - KW ..``). Row-major, or with :attr:`dw_trim` ring
        by ring from that corner (ring ``d``: ``max(row, dw_kernel - 1 - column) = d``), so a
        kernel of side ``s`` is the first ``s**2`` slots: a 3 x 3 one chunk of 16 lanes on a
        7 x 7 register, as on a 3 x 3 one. Fixed in hardware either way (a constant mux)."""
        dk = self.dw_kernel
        taps = [divmod(p, dk) for p in range(dk * dk)]
        if self.dw_trim:
            taps.sort(key=lambda t: (max(t[0], dk - 1 - t[1]), t))
        return taps

    def dw_issue(self, kernel_h: int, kernel_w: int) -> int:
        """Chunks (cycles) a depthwise pixel of a ``kernel_h x kernel_w`` layer issues, and
        weight words a group loads: with :attr:`dw_trim` those its kernel's ring fills,
        ``ceil(max(kernel_h, kernel_w)**2 / lanes)`` (:attr:`dw_taps`), else ``dw_words``."""
        if not self.dw_trim:
            return self.dw_words
        return -(-max(kernel_h, kernel_w) ** 2 // self.lanes)

    def dw_slot_taps(self, kernel_h: int, kernel_w: int) -> list[tuple[int, int] | None]:
        """The kernel tap ``(ky, kx)`` of each tap slot of a ``kernel_h x kernel_w`` layer (the
        register position :attr:`dw_taps` gives, less the kernel's offset in the corner), None
        where the slot holds no tap: the planner's weight lanes and their inverse."""
        dk, out = self.dw_kernel, []
        for r, j in self.dw_taps:
            kx = j - (dk - kernel_w)
            out.append((r, kx) if r < kernel_h and 0 <= kx < kernel_w else None)
        return out

    @property
    def dw_words(self) -> int:
        """Weight words (and cycles) per output pixel of a depthwise channel group:
        ``dw_beats x dw_chunks``."""
        return self.dw_beats * self.dw_chunks

    @property
    def dw_groups(self) -> int:
        """Channel groups (of ``dw_channels``) one depthwise engine layer walks, group after
        group: each group's rows are another word of the line buffer's columns
        (``max_groups``), its ``dw_beats`` requantizers more words of the parameter memory
        (``max_blocks``), its ``dw_words`` weight words more of the weight memory."""
        return max(1, min(self.max_groups, self.max_blocks // self.dw_beats,
                          self.weight_depth // self.dw_words))

    @property
    def segments(self) -> int:
        """Kernel rows one chunk can hold at most (packed mode; depthwise reads ``dw_kernel``
        rows at once)."""
        return max(min(self.lanes, self.max_kernel), self.dw_kernel)

    @property
    def acc_bits(self) -> int:
        """Accumulator width: the largest window sum plus an int32 bias, without overflow (a
        block's chunks, at most ``max_chunks`` and the weight memory, add ``lanes`` products
        each)."""
        k = min(self.max_chunks, self.weight_depth) * self.lanes
        return max(acc_bits_for(k), 32) + 1

    @property
    def mult_bits(self) -> int:
        return MULT_BITS

    @property
    def shift_bits(self) -> int:
        return SHIFT_MAX.bit_length()

    @property
    def pool_config(self) -> PoolConfig:
        return PoolConfig(lanes=self.block, max_width=self.max_width, max_height=self.max_height,
                          max_blocks=self.max_blocks)

    def derived(self) -> dict:
        return {"macs": self.macs, "max_groups": self.max_groups, "max_blocks": self.max_blocks,
                "max_chunks": self.max_chunks, "weight_depth": self.weight_depth,
                "max_pad": self.max_pad, "row_slots": self.row_slots,
                "row_words": self.row_words, "acc_bits": self.acc_bits}

    def with_(self, **changes) -> ConvConfig:
        return replace(self, **changes)

    def build(self):
        if self.pool:
            from .chain import ConvPool

            return ConvPool(self)
        from .engine import ConvEngine

        return ConvEngine(self)


@dataclass(frozen=True)
class PoolConfig:
    """A 2x2 stride-2 max-pool over a stream of ``lanes``-channel beats (channels-last blocks).

    Parameters
    ----------
    lanes : int
        int8 channels per beat.
    max_width, max_height : int
        Largest input feature map.
    max_blocks : int
        Most beats per pixel (channel blocks).
    """

    lanes: int = 16
    max_width: int = 28
    max_height: int = 28
    max_blocks: int = 4

    def __post_init__(self):
        check_int("lanes", self.lanes, min=1, max=64)
        check_int("max_width", self.max_width, min=1, max=4096)
        check_int("max_height", self.max_height, min=1, max=4096)
        check_int("max_blocks", self.max_blocks, min=1, max=4096)

    @property
    def depth(self) -> int:
        """Partial maxima held for one output row: pooled columns x channel blocks."""
        return max(self.max_width // 2, 1) * self.max_blocks


PRESETS: dict[str, ConvConfig] = {
    c.name: c
    for c in (
        # The reference CNN's conv layers on 256 MACs (conv1..3: 28x28x1, 13x13x32, 5x5x64).
        ConvConfig(name="cnn"),
        ConvConfig(pool=False, name="cnn_nopool"),
        # The same layer limits on 4 x 4 MACs: the CNN's layers verified at a fraction of the
        # build time (the 256-MAC preset is what the benchmark measures).
        ConvConfig(lanes=4, block=4, name="cnn_small"),
        # Small, non-power-of-two and degenerate engines with every kernel size (tests).
        # k5n3's kernels reach DS-CNN's 10 rows (a 16-row line buffer, 5 padding rows a side).
        ConvConfig(lanes=5, block=3, max_width=9, max_height=12, max_cin=11, max_cout=7,
                   max_kernel=10, name="k5n3"),
        ConvConfig(lanes=1, block=1, max_width=5, max_height=5, max_cin=3, max_cout=2,
                   max_kernel=3, name="k1n1"),
    )
}
