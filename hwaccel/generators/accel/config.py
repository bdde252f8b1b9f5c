"""Configuration of the accelerator: its convolution fabric, scratchpads and program memory."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...config import check_bool, check_int, check_name
from ...numerics import AVG_MAX_WINDOW, avg_params
from ..attention.config import AttentionConfig
from ..conv.config import ConvConfig, PoolConfig
from ..conv.layouts import requant_layout
from ..lstm.config import LstmConfig

__all__ = ["AccelConfig", "PRESETS", "MODEL_PRESETS"]


@dataclass(frozen=True)
class AccelConfig:
    """The accelerator: scratchpads, a command processor and the engines, run by programs.

    Parameters
    ----------
    conv : ConvConfig (or the dict a sidecar holds)
        The convolution engine (with its max-pool stage) that runs CONV and GEMM commands. Its
        ``block`` (output channels a result beat) is its ``lanes`` (channels an activation
        word) or, with no attention units, ``lanes`` divided by a power of two: the
        accelerator joins a pixel's consecutive beats into words (:attr:`word_beats`), so a
        layer's output is the next one's input with no host step. A lane count that is not a
        multiple of 16 pads 16-channel layers (ResNet-8's) on both sides; ``lanes=16, block=8``
        runs them unpadded on 128 MACs. A depthwise CONV's channel group is a word either way
        (:attr:`.ConvConfig.dw_beats` beats of ``block`` channels).
    act_depth : int
        Words of the activation scratchpad (one word = ``lanes`` int8, channels-last).
    wgt_depth : int
        Words of the weight scratchpad (one word = one engine weight beat, ``lanes x block``
        int8, or one requantizer beat). A separate wide memory so that a layer's weights load at
        one beat per cycle (a 16-byte scratchpad would need 16 cycles per 256-byte beat).
    lstm : LstmConfig (or a dict), optional
        The LSTM cell that runs LSTM commands (``output="all"``: every step's h is stored).
        Its ``input_size`` and ``hidden_size`` are the largest an LSTM command may ask for
        (each command carries its own). Its weight beats (``lanes`` int8) come from the weight
        scratchpad, one per cycle.
    attention : AttentionConfig (or a dict), optional
        The softmax, LayerNorm and GELU units that run SOFTMAX, LAYERNORM and GELU (and with
        them the MATMUL command); ``lanes`` must equal the activation word's. None (the
        presets): those opcodes are illegal and the command word has no ``attn`` field. Its
        ``load_bits`` is set to ``wgt_bits`` (the units load packed weight words). The RTL
        runs all four (:mod:`.attn_path` wires the units in, MATMUL runs on the conv engine).
    psum_depth : int
        Words of the partial-sum memory (one word = ``block`` int accumulators): a GEMM whose K
        spans several engine tiles keeps one M tile's sums of one N tile there between its K
        tiles, so such a GEMM runs M tiles of ``min(max_width, psum_depth // max_blocks)`` rows.
    prog_depth : int
        Commands the program memory holds.
    watchdog : int
        Cycles a command may run with no stream transfer before it faults (cause TIMEOUT).
    avg_max_blocks : int
        Most words per pixel (``lanes`` channels each) an AVGPOOL averages: the
        element-wise unit keeps one accumulator word per block (registers).
    avg_max_window : int
        Most values one AVGPOOL window averages (``kh x kw``): sets the accumulators' and the
        divider multiplier's widths (:func:`hwaccel.numerics.avg_params`).
    lut_multipliers : bool
        For FPGA synthesis (outputs and cycles are the same either way): every multiplier but
        the conv engine's int8 x int8 MAC products -- the requantizers, the element-wise
        unit's, the command processor's range checks -- is mapped to LUT logic (Yosys'
        ``booth``, :func:`hwaccel.impl.yosys.run_yosys`) instead of a DSP block, so an ECP5's
        156 MULT18X18D go to MACs (docs/ecp5-dsp.md), and to the requantizers of
        ``conv.requant_dsp_blocks`` blocks where some are left. The element-wise unit's AVGPOOL
        products keep DSP blocks and take the ADD's first word too
        (:mod:`hwaccel.generators.accel.elt_products`), and its two datapaths share their last
        stages (:mod:`hwaccel.generators.accel.elt_tail`): the RTL's only changes.
    add_product_stage : bool
        With ``lut_multipliers``: the element-wise ADD's second-word products (LUT logic: the
        DSP blocks it may use take the first word's) get a register between the partial
        products of the byte's two halves (:func:`.elt_products.staged_product`), a stage more
        taken where the tail needs that word a cycle later anyway: outputs and cycles are the
        same. Off by default, so every preset's netlist is the one it was.
    elt_mul : bool
        The element-wise unit runs MUL too, the product of two tensors (or of a map and one
        pixel's channels, a squeeze-and-excitation gate), on the ADD's multipliers and
        pipeline (:mod:`.isa`): a multiplier operand register a lane of each word more, and
        the gate's pointer. Without it MUL is ILLEGAL_OPCODE. Off on the placed ECP5 presets,
        so their netlists are the ones placed.
    end_stage : bool
        A job's end (``done``: a gate after the running unit's handshakes) goes into the
        ``ended`` register only; the job's flags (``active`` and the kind registers, whose
        fan-out is the datapath's) are cleared from ``ended`` a cycle later and read as clear
        meanwhile. The processor sees the end in the same cycle as without it, so outputs and
        every counter are the same. Off by default, so every preset's netlist is the one it
        was.
    name : str
        Preset name (the slug is ``accel_<name>``).
    """

    conv: ConvConfig = ConvConfig(name="accel")
    act_depth: int = 32768
    wgt_depth: int = 512
    lstm: LstmConfig | None = None
    attention: AttentionConfig | None = None
    psum_depth: int = 112
    prog_depth: int = 256
    watchdog: int = 1 << 16
    avg_max_blocks: int = 16
    avg_max_window: int = 1024
    lut_multipliers: bool = False
    add_product_stage: bool = False
    elt_mul: bool = False
    end_stage: bool = False
    name: str = "custom"

    kind = "accel"

    def __post_init__(self):
        if isinstance(self.conv, dict):  # sidecars carry the nested config as a dict
            object.__setattr__(self, "conv", ConvConfig(**self.conv))
        if not isinstance(self.conv, ConvConfig):
            raise TypeError(f"conv must be a ConvConfig, not {self.conv!r}")
        if isinstance(self.lstm, dict):
            object.__setattr__(self, "lstm", LstmConfig(**self.lstm))
        if self.lstm is not None and not isinstance(self.lstm, LstmConfig):
            raise TypeError(f"lstm must be an LstmConfig or None, not {self.lstm!r}")
        if self.lstm is not None and self.lstm.output != "all":
            raise ValueError(f"lstm.output must be 'all' (every h is stored), not "
                             f"{self.lstm.output!r}")
        if isinstance(self.attention, dict):
            object.__setattr__(self, "attention", AttentionConfig(**self.attention))
        if self.attention is not None and not isinstance(self.attention, AttentionConfig):
            raise TypeError(f"attention must be an AttentionConfig or None, not "
                            f"{self.attention!r}")
        if self.attention is not None and self.attention.lanes != self.conv.lanes:
            raise ValueError(f"attention.lanes must equal conv.lanes ({self.conv.lanes}), not "
                             f"{self.attention.lanes!r}")
        if self.attention is not None and self.attention.load_bits != self.wgt_bits:
            # the units' load ports take weight-scratchpad words: packed beats of wgt_bits
            object.__setattr__(self, "attention", self.attention.with_(load_bits=self.wgt_bits))
        k, rest = divmod(self.conv.lanes, self.conv.block)
        if rest or k & (k - 1):
            raise ValueError(f"conv.lanes ({self.conv.lanes}) must be conv.block "
                             f"({self.conv.block}) times a power of two, so a pixel's result "
                             f"beats make whole activation words")
        if k > 1 and self.attention is not None:
            raise ValueError(f"conv.block ({self.conv.block}) must equal conv.lanes "
                             f"({self.conv.lanes}) with attention units (MATMUL's N tiles are "
                             f"result beats of a word each)")
        if k > 1 and self.conv.max_cout % self.conv.lanes:
            raise ValueError(f"conv.max_cout ({self.conv.max_cout}) must be a multiple of "
                             f"conv.lanes ({self.conv.lanes}) when conv.block is smaller, so a "
                             f"GEMM's N tiles are whole words")
        if not self.conv.pool:
            raise ValueError("conv.pool must be True: CONV commands may pool, not False")
        check_int("act_depth", self.act_depth, min=2, max=1 << 24)
        check_int("wgt_depth", self.wgt_depth, min=2, max=1 << 24)
        check_int("prog_depth", self.prog_depth, min=2, max=1 << 16)
        c = self.conv
        check_int("psum_depth", self.psum_depth, min=c.max_blocks,
                  max=c.max_width * c.max_height * c.max_blocks)
        check_int("watchdog", self.watchdog, min=16, max=1 << 30)
        check_int("avg_max_blocks", self.avg_max_blocks, min=1, max=1 << 12)
        check_int("avg_max_window", self.avg_max_window, min=1, max=AVG_MAX_WINDOW)
        check_bool("lut_multipliers", self.lut_multipliers)
        check_bool("add_product_stage", self.add_product_stage)
        check_bool("end_stage", self.end_stage)
        check_bool("elt_mul", self.elt_mul)
        if self.add_product_stage and not self.lut_multipliers:
            raise ValueError("add_product_stage needs lut_multipliers: without it the ADD's "
                             "products are DSP blocks, registered inside")
        if self.lut_multipliers and self.conv.requant_dsp:
            # every multiply but the int8 x int8 ones is LUT logic: the requantizer's too
            object.__setattr__(self, "conv", self.conv.with_(requant_dsp=False))
        check_name(self.name)

    # --- derived sizes -------------------------------------------------------------------------
    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    @property
    def lanes(self) -> int:
        return self.conv.lanes

    @property
    def word_beats(self) -> int:
        """Conv result beats (``block`` channels each) an activation word holds: 1, or a
        power of two when ``block < lanes``."""
        return self.conv.lanes // self.conv.block

    @property
    def maxpool_config(self) -> PoolConfig:
        """The MAXPOOL unit's: the conv engine's pool stage's over words of ``lanes``
        channels (its command fields are the stage's, so one layout serves both)."""
        pc = self.conv.pool_config
        return pc if self.word_beats == 1 else replace(
            pc, lanes=self.lanes, max_blocks=self.conv.max_cout // self.lanes)

    @property
    def macs(self) -> int:
        return self.conv.macs

    @property
    def psum_width(self) -> int:
        """Rows of A in one M tile of a GEMM whose K spans several engine tiles."""
        return min(self.conv.max_width, self.psum_depth // self.conv.max_blocks)

    @property
    def gemm_max_words(self) -> int:
        """Most words (``lanes`` int8 each) in a GEMM row of A: any K up to this sums without
        overflowing the engine's accumulators (int32 bias plus K products of at most 2**14)."""
        top = (1 << (self.conv.acc_bits - 1)) - 1 - (1 << 31)
        return top // (self.lanes << 14)

    @property
    def avg_acc_bits(self) -> int:
        """Width of an AVGPOOL accumulator: a sum of up to ``avg_max_window`` biased bytes."""
        return (255 * self.avg_max_window).bit_length()

    @property
    def avg_mult_bits(self) -> int:
        """Width of the AVGPOOL divider's multiplier: the widest ``avg_params(n)`` needs."""
        return max(avg_params(n)[0] for n in range(1, self.avg_max_window + 1)).bit_length()

    @property
    def act_bits(self) -> int:
        return self.lanes * 8

    @property
    def wgt_bits(self) -> int:
        rq = requant_layout(self.conv).size
        widths = [self.conv.lanes * self.conv.block * 8, rq]
        if self.lstm is not None:
            from ..lstm.cell import param_layout

            widths += [self.lstm.lanes * 8, param_layout(self.lstm).size]
        if self.attention is not None:
            from .attn_isa import ln_param_layout, ln_setup_layout

            widths += [ln_setup_layout().size, ln_param_layout().size]
        return max(widths)

    @property
    def addr_bits(self) -> int:
        """Offset bits of a host address (the largest memory's)."""
        return max(math.ceil(math.log2(d)) for d in (self.act_depth, self.wgt_depth,
                                                      self.prog_depth, 16))

    @property
    def data_bits(self) -> int:
        """Width of the host data port: the widest memory word (command words included)."""
        from .isa import command_layout

        return max(self.act_bits, self.wgt_bits, command_layout(self).size, 64)

    def derived(self) -> dict:
        from .isa import command_layout

        return {"macs": self.macs, "act_bits": self.act_bits, "wgt_bits": self.wgt_bits,
                "avg_acc_bits": self.avg_acc_bits, "avg_mult_bits": self.avg_mult_bits,
                "addr_bits": self.addr_bits, "data_bits": self.data_bits,
                "command_bits": command_layout(self).size}

    def with_(self, **changes) -> AccelConfig:
        return replace(self, **changes)

    def build(self):
        from .accelerator import Accelerator

        return Accelerator(self)


PRESETS: dict[str, AccelConfig] = {
    c.name: c
    for c in (
        # Small fabric and memories: every RTL test runs on it.
        AccelConfig(conv=ConvConfig(lanes=4, block=4, max_width=8, max_height=8, max_cin=12,
                                    max_cout=8, max_kernel=3, name="accel_tiny"),
                    act_depth=2048, wgt_depth=512, psum_depth=16, prog_depth=64,
                    watchdog=2048, avg_max_blocks=4, avg_max_window=64,
                    lstm=LstmConfig(input_size=6, hidden_size=5, lanes=4, name="accel_tiny"),
                    elt_mul=True, name="tiny"),
        # The reference CNN on 16 x 16 = 256 MACs; 16 images of 28 x 28 fit the scratchpad.
        # LSTMs up to the reference layer (I = H = 64) on 256 lanes: a weight beat is exactly
        # one weight-scratchpad word (2048 bits), as a conv weight beat is; any smaller I and H
        # run too (one slot: every step is I + H issue cycles).
        # Conv: kernels up to 10 x 10 (DS-CNN's 10 x 4; 7 x 7 stems), depthwise ones up to
        # 7 x 7 (MobileNetV3's, EfficientNet's 5 x 5, MCUNet's 7 x 7; a 3 x 3 still one chunk,
        # a 5 x 5 two, a 7 x 7 four: ConvConfig.dw_taps), maps up to 96 x 96 and
        # 256 channels (MobileNetV1 0.25's 96 x 96 x 3 input and 256-channel tail; taller maps
        # run as bands of rows). The line buffer holds 16 rows of 105 padded columns x 16
        # channel groups (3.4 Mibit); the weight memory is capped at 256 words (512 Kibit),
        # which holds any 3 x 3 layer up to 64 x 64 channels, a 1 x 1 up to 256 x 256 and a
        # 7 x 7 over 16 input channels into 64 outputs. psum_depth = 32 pixels x 16 blocks,
        # so a K-tiled GEMM's M tile stays 32 rows.
        AccelConfig(conv=ConvConfig(max_width=96, max_height=96, max_cin=256, max_cout=256,
                                    max_kernel=10, dw_max_kernel=7, max_weight_words=256,
                                    name="accel_default"),
                    act_depth=32768, wgt_depth=1024, psum_depth=512,
                    lstm=LstmConfig(input_size=64, hidden_size=64, lanes=256,
                                    name="accel_default"),
                    prog_depth=256, elt_mul=True, name="default"),
        # ECP5-85F: 8 x 8 = 64 int8 multipliers plus 8 requantize multipliers stay under its
        # 156 MULT18X18D. Sized for the largest reference model its block RAM holds:
        # MobileNetV1 (VWW): 48 x 48 maps (its 96 x 96 stem runs over im2col patches, 48 x 48
        # of them), an activation scratchpad of 12,288 words (the stem's 9,216 words of patches
        # beside its 2,304-word output). Its global pool over 256 channels (32 blocks) runs on
        # AVGPOOL's 16 accumulator words as one command that reads the 3 x 3 map as 9 rows of
        # two 16-block pixels (.avg_view). ResNet-8, DS-CNN (its 10 x 4 stem on patches too)
        # and the FC autoencoder fit inside that.
        # AVGPOOL windows up to 128 (ResNet-8's 8 x 8, DS-CNN's 25 x 5): the divider's
        # operands (15 x 17 bits) then fit one MULT18X18D a lane with its registers.
        AccelConfig(conv=ConvConfig(lanes=8, block=8, max_width=48, max_height=48,
                                    name="accel_ecp5"), act_depth=12288,
                    wgt_depth=2048, psum_depth=224, prog_depth=256, avg_max_window=128,
                    name="ecp5"),
    )
}


#: Configurations with attention units, apart from :data:`PRESETS` (which ``make rtl`` emits
#: and the every-preset tests cover): the default preset with softmax, LayerNorm and GELU units
#: (rows up to 128, LayerNorm up to 256 channels, 16 lanes), which runs the transformer
#: workload (``hwaccel compare --model transformer --preset default_attention``), and a tiny one
#: for the RTL tests.
MODEL_PRESETS: dict[str, AccelConfig] = {
    "default_attention": PRESETS["default"].with_(
        # Area for pace (an ASIC-sized preset): four quotient and root bits a cycle (a row's
        # reciprocal and reciprocal square root in 6 cycles, each a step of the last row's
        # latency), six dividers (rows of 16 scores a cycle), three roots (rows of 32
        # channels every 2 cycles, their words), 32 slots, and tables of two 128-entry rows
        # a lane, written a row a cycle (the exponent table's 3 beats in 4 cycles of writes,
        # GELU's beat in 2).
        attention=AttentionConfig(max_len=128, max_channels=256, lanes=16, bits_per_cycle=4,
                                  dividers=6, roots=3, slots=32, table_row=128,
                                  name="default"),
        name="default_attention"),
    # tiny's fabric with 4-lane units (rows up to 16, LayerNorm up to 16 channels), no LSTM
    # cell, and 1024 weight words: the RTL tests of the attention commands run on it. It ends
    # its jobs through end_stage (the same cycles and outputs), so those tests hold that too.
    # Its kernels reach 5 x 5, depthwise ones too (dw_max_kernel: tiny's 3 x 3 register is
    # the other case), for the compiled models' RTL tests of MobileNetV3's 5 x 5 layers.
    "tiny_attention": PRESETS["tiny"].with_(
        conv=PRESETS["tiny"].conv.with_(max_kernel=5, dw_max_kernel=5,
                                        name="accel_tiny_attention"),
        lstm=None, attention=AttentionConfig(max_len=16, max_channels=16, lanes=4, name="tiny"),
        wgt_depth=1024, end_stage=True, name="tiny_attention"),
    # ECP5-85F with 12 x 12 = 144 int8 MACs (lanes must equal block, and 13 x 13 = 169 would
    # exceed its 156 MULT18X18D): every other multiplier but AVGPOOL's 12 lane products is LUT
    # logic (lut_multipliers), so the MACs hold 144 of the DSP blocks and AVGPOOL the other 12.
    # ecp5's 3 x 3 kernels (DS-CNN's 10 x 4 stem runs over its im2col patches, as on ecp5; 10
    # x 10 kernels took 16 line-buffer rows, 4,278 LUT4 slots and 36 DP16KD more), 32 x 32 maps
    # and 64 channels (ResNet-8), weight memories of 324 words (a 3 x 3 layer of 64 x 64
    # channels), an activation scratchpad of 8,192 words (ResNet-8), AVGPOOL windows up to 128
    # (DS-CNN's 25 x 5) over up to 6 blocks of 12 channels (a wider global pool runs as one
    # command on them, .avg_view). MobileNetV1 needs ecp5's 48 x 48 maps and 12,288 words:
    # a copy with them runs it on its RTL in 78,172 cycles, not placed yet (docs/ecp5-dsp.md).
    "ecp5_144": PRESETS["ecp5"].with_(
        conv=ConvConfig(lanes=12, block=12, max_width=32, max_height=32,
                        max_weight_words=324, name="accel_ecp5_144"),
        act_depth=8192, wgt_depth=512, avg_max_blocks=6, avg_max_window=128,
        lut_multipliers=True, name="ecp5_144"),
    # ECP5-85F with 16 x 8 = 128 int8 MACs: 16 input channels a chunk and 8 output channels
    # a beat, two beats a 16-channel activation word (.beats), so ResNet-8's 16-channel
    # layers run unpadded (ecp5_144's 12 lanes pad them to 24 on both sides). The MACs hold
    # 128 MULT18X18D and AVGPOOL's 16 lane products 16 more, and six of the eight
    # requantizers the last 12 (requant_dsp_blocks); every other multiplier is LUT logic
    # (lut_multipliers). Each MAC product is registered once more as it leaves its block
    # (product_register: a stage more, its route to the adder tree a cycle of its own).
    # 48 x 48 maps and 64 channels: the four MLPerf Tiny models (MobileNetV1's maps are
    # 48 x 48, its first conv over host-written im2col patches; a depthwise group is a
    # 16-channel word in two beats) and the reference CNN. Weight memories of 288 words (a
    # 3 x 3 layer of 64 x 64 channels).
    "ecp5_128": PRESETS["ecp5"].with_(
        conv=ConvConfig(lanes=16, block=8, max_width=48, max_height=48,
                        max_weight_words=288, product_register=True, requant_dsp_blocks=6,
                        name="accel_ecp5_128"),
        act_depth=8192, wgt_depth=1024, psum_depth=256, avg_max_blocks=4,
        avg_max_window=128, lut_multipliers=True, name="ecp5_128"),
    # tiny with 2-channel result beats in 4-channel words (two a word, .beats): the RTL tests
    # of a block below the lanes run on it.
    "tiny_4x2": PRESETS["tiny"].with_(
        conv=PRESETS["tiny"].conv.with_(block=2, name="accel_tiny_4x2"), name="tiny_4x2"),
    # ecp5's 8 x 8 fabric with 8-lane units (rows up to 32, LayerNorm up to 64 channels): the
    # digit transformer (16 tokens, width 32, FFN 64) on the RTL in minutes of Verilator
    # build (hwaccel compare --model transformer --backends golden,rtl --preset ecp5_attention).
    "ecp5_attention": PRESETS["ecp5"].with_(
        attention=AttentionConfig(max_len=32, max_channels=64, lanes=8, name="ecp5"),
        name="ecp5_attention"),
}
