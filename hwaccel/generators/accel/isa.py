"""The accelerator's instruction set, host address map, status and counters: defined once.

The hardware (:mod:`.processor`, :mod:`.accelerator`), the golden interpreter (:mod:`.model`)
and the driver (:mod:`.driver`) all take field positions from :func:`command_layout`.

Commands (one program-memory word each, executed in order)
----------------------------------------------------------
``CONV``     the conv engine runs one layer: ``desc`` (the engine's layer descriptor,
             :func:`hwaccel.generators.conv.layer.descriptor`: 3x3/any kernel, stride, padding,
             ReLU, 2x2 max-pool), input words at ``src`` (channels-last: pixel, then channel
             group), ``weight_words`` engine weight beats then ``blocks`` requantizer beats at
             ``wgt``, output words at ``dst`` (pixel, then output block; with ``block <
             lanes`` a word is ``word_beats`` consecutive blocks, and ``blocks`` must fill
             whole words: :mod:`.beats`).
             With ``desc.depthwise`` (groups = channels, kernels up to the engine's
             ``dw_kernel``) ``nb`` is the tensor's words per pixel (channel groups) and the
             processor runs ``nb`` engine jobs: job ``g`` reads word ``g`` of every pixel and
             writes word ``g`` of every output pixel (runs of 1, stride ``nb``), with weights
             ``wgt + g x (weight_words + 1)``: the group's ``weight_words`` beats, then its
             requantizer beat. The next group's job issues straight after (RUN -> ISSUE).
             Only with ``block == lanes`` (a group's beats are then its words).
``GEMM``     ``C[M, N] = requant(A[M, K] @ W[K, N] + bias)`` (+ReLU), any M, K, N that fit the
             memories. ``count`` is M; a row of A is ``kw = ceil(K / lanes)`` words at ``src``,
             a row of C is ``nb = ceil(N / block)`` blocks at ``dst`` (channels-last, as any
             tensor: ``nb`` words, or ``nb / word_beats`` with ``block < lanes``, when ``nb``
             must fill whole words). ``desc`` is the 1x1 layer template of the first tile:
             ``groups = min(kw, max_groups)``, ``blocks = min(nb, max_blocks)``, ``weight_words
             = groups x blocks``. The processor tiles in hardware, N tiles outermost (``max_blocks``
             blocks each), then M tiles, then K tiles (``max_groups`` words each); every tile
             is one engine layer. The DMA reads a K tile's columns of A and writes an N tile's
             columns of C with a row stride. While K spans several tiles the engine keeps
             int partial sums in the partial-sum memory (``AccelConfig.psum_depth``): the first
             K tile starts from the bias, later ones from the stored sums, and only the last
             one's requantized beats are written out; M tiles are then single rows of at most
             ``psum_width`` pixels (else whole ``max_height x max_width`` tiles, then rows,
             then the rest). Weights at ``wgt``, per N tile of ``b`` blocks: its K tiles' weight
             beats in order (``g x b`` each), then its ``b`` requantizer beats; ``(kw + 1) x
             nb`` words in all. Sums never overflow: ``kw <= gemm_max_words``.
``MAXPOOL``  2x2 stride-2 max-pool (floor) of a ``width x height`` map of ``blocks`` words per
             pixel at ``src`` into ``dst``, on a stand-alone max-pool unit.
``LSTM``     runs one sequence of ``count`` = T steps on the LSTM cell from h = c = 0, at the
             sizes of the ``lstm`` field: ``input_size`` I and ``hidden_size`` H, each from 1 up
             to the cell's (``AccelConfig.lstm``'s sizes are the largest it runs; more is a
             SHAPE fault). x_t are ``ceil(I / lanes)`` words each at ``src`` (one 1 x T tensor
             of I channels), h_t are stored as ``ceil(H / lanes)`` words each at ``dst`` (lanes
             past H are 0); ``wgt`` holds ``slots x (I + H)`` weight beats (``slots =
             ceil(4H / P)`` on the cell's P lanes) then 4H parameter beats (one per word), in
             the cell's order for that size (:mod:`hwaccel.generators.lstm.driver`). Weights
             are reloaded per command (the cell takes a load, and with it the sizes, only
             between sequences), so stacked layers of different widths are LSTM commands of
             their own sizes, one after the other. Checks and word counts:
             :mod:`.lstm_checks`.
``FENCE``    waits until every engine is idle and forgets the weights the conv engine holds, so
             the next CONV/GEMM loads its weights even when it names the same ones. Execution
             is in order, one job at a time, so the held weights are the only state that
             crosses a command boundary; a fence makes the load cost visible (or lets a host
             that measures one layer at a time compare like with like).
``DONE``     ends the program: STATUS.done is set and the processor goes idle.
``ADD``      residual add on the element-wise unit: ``count`` words of ``a`` at ``src`` and
             ``count`` words of ``b`` at ``elt.add.src2`` (same shape, channels-last), each
             lane ``y = add_requantize(a, b, AddRequant(mult_a, mult_b, shift), relu=relu)``
             (:func:`hwaccel.numerics.add_requantize`), ``count`` words to ``dst``. The
             activation scratchpad's read port returns two consecutive words (two banks,
             :mod:`.act_banks`), so the unit reads two words of ``a``, then the same two of
             ``b``: one word a cycle, as the write port stores them.
``MUL``      element-wise product on the element-wise unit (only with ``AccelConfig.elt_mul``;
             else ILLEGAL_OPCODE): ``count`` words of ``a`` at ``src``, each lane ``y =
             mul_requantize(a, b, elt.add.shift, relu=elt.add.relu)``
             (:func:`hwaccel.numerics.mul_requantize`: ``a x b`` rounded and shifted, the
             output's scale a power-of-two multiple of the operands'), ``count`` words to
             ``dst``. ``b`` is ``count`` words at ``elt.add.src2`` (the same shape), or with
             ``elt.add.mult_b = n > 0`` one pixel of ``n`` words at ``src2`` for every pixel of
             ``a`` (a gate per channel: word ``i`` of ``a`` takes word ``i mod n``), stored as
             ``n + 1`` words -- the pixel, then its first word again -- since the unit reads
             ``b`` in pairs as the ADD does and a pair that starts at the pixel's last word
             takes the word after it. ``elt.add.mult_a`` is unused. The ADD's pipeline, reads
             and cycles: the multipliers take ``a``'s lanes as the operand ``mult_a`` was and
             ``b``'s as ``b``'s.
``AVGPOOL``  average pool on the element-wise unit: non-overlapping ``kh x kw`` windows with
             stride = window (floor: the last ``width % kw`` columns and ``height % kh`` rows
             are dropped) over a ``width x height`` map of ``blocks`` words per pixel at
             ``src``; ``out_width x out_height`` pixels of ``blocks`` words to ``dst``. Each
             lane is :func:`hwaccel.numerics.average_with` of its window's sum with the
             command's ``mult`` and ``shift``; with ``avg_params(kh * kw)`` (the driver's) that
             is the exact int8 average rounded half up. Global average pooling is the window
             = the whole map. The unit reads the window's words in order (a window row of
             ``kw x blocks`` consecutive words, then the next row), one a cycle, and keeps one
             accumulator word per block. A pool over more blocks than that
             (``AccelConfig.avg_max_blocks``) whose windows span the map's width is still one
             command: the driver describes the map as one pixel a row, each row pixels of
             fewer blocks (:mod:`.avg_view`).

Attention commands (only with ``AccelConfig.attention``, the units' sizes; else ILLEGAL_OPCODE,
as LSTM is without a cell). Their fields are the command word's ``attn`` (:mod:`.attn_isa`),
which exists only on such a config. SOFTMAX, LAYERNORM and GELU run on the attention units
(:mod:`hwaccel.generators.attention`), MATMUL on the conv engine. ``dst`` may equal ``src`` or
lie below it; strictly inside it is an ADDRESS fault (as for ADD).

``SOFTMAX``  ``count`` rows of ``attn.n`` scores (``ceil(n / lanes)`` words each, rows back to
             back at ``src``; ``n`` up to the unit's ``max_len``), each row
             :func:`hwaccel.numerics.softmax_int` into probabilities (0..127) at ``dst`` (same
             layout, lanes past ``n`` 0). ``attn.causal``: row ``r`` sees columns ``0..r``
             (``count <= n``; a T x T score tensor is ``count = n = T``). ``wgt``: the 256-entry
             exponent table, packed (:mod:`hwaccel.generators.attention.packing`: as many 18-bit
             entries a weight word as fit, from bit 0), loaded per command and checked as it
             loads (an entry above 2**17 or a first entry below 2**16 is a SHAPE fault:
             :class:`~hwaccel.numerics.SoftmaxParams`).
``LAYERNORM`` ``count`` rows of ``attn.n`` = C channels (``ceil(C / lanes)`` words each), each
             :func:`hwaccel.numerics.layernorm_int`; ``wgt``: one setup word ``{E, S}``
             (:func:`.attn_isa.ln_setup_layout`), then the C entries ``{G, B}``
             (:func:`.attn_isa.ln_param_layout`, 73 bits) packed as many a word as fit, checked
             as they load (S = 0, G = -2**16 or B = -2**55 is a SHAPE fault).
``GELU``     ``count`` words at ``src``, every lane :func:`hwaccel.numerics.gelu_int`, to
             ``dst``; ``wgt``: the 256-entry int8 table, packed as many entries a word as fit.
``MATMUL``   ``C[M, N] = requantize(A[M, K] @ B, attn.mult, attn.shift)`` of two activations,
             ``B`` = ``B[K, N]`` or, with ``attn.transpose``, ``B[N, K]`` transposed (``Q . K^T``).
             ``count`` = M, ``attn.k`` = K, ``attn.n`` = N. Row ``m`` of A is ``ceil(K / lanes)``
             words at ``src + m x attn.sa``; row ``r`` of B is ``ceil(N / lanes)`` (``ceil(K /
             lanes)`` transposed) words at ``attn.src2 + r x attn.sb``; row ``m`` of C is
             ``ceil(N / lanes)`` words at ``dst + m x attn.sc`` (lanes past N are 0). The
             strides and a word offset in ``src``/``src2``/``dst`` select one head's columns of
             a wider tensor (a head of ``d`` columns at word ``h x d / lanes``), so per-head
             products read and write the joined tensors in place. Lanes past K in A's and B's
             last words are ignored. The requantizer is a command field, as ADD's parameters
             are (no bias, no ReLU), and no weight word is read: both operands are
             activations. C's words must not overlap A's or B's (ADDRESS). The conv engine
             runs it as the GEMM ``M x K x N`` (:func:`.attn_isa.matmul_gemm`), B's beats
             gathered from the activation scratchpad in place of weight-scratchpad words (a
             beat is ``lanes`` words, two a cycle on two read ports, from the tile job's ISSUE
             cycle on; a command's first tile before it, :data:`.matmul_checks.GATHER_LEAD`,
             or under the job before it, one a cycle), the requantizer beats loading beside
             them and A's rows streaming from the cycle after B's last read; it replaces the
             weights the engine holds (the next CONV/GEMM loads its own). Sums are exact
             (K < 2**17). Cycles: :func:`.attn_isa.matmul_cycles`.

``fuse.gelu`` (a GEMM's flag, only in the command words of configurations with attention
             units) passes every requantized output through the GELU table before the store
             (:mod:`.fuse`): the GEMM followed by a GELU command on that table, as one command.
             The table is the GELU command's load, in the ``T`` weight words just before the
             GEMM's (``wgt - T``; ``wgt < T`` is a SHAPE fault), read with the first tile's
             weights (``T`` more load cycles; that tile never reuses held weights).
             ``fuse.add`` then adds the word the result overwrites (the residual, already at
             ``dst``): each lane ``add_requantize(result, residual, AddRequant(elt.add.mult_a,
             elt.add.mult_b, elt.add.shift), relu=elt.add.relu)``, the GEMM followed by an ADD
             of its output and that word, as one command (a cycle more per tile job: the
             residual is read on the activation scratchpad's copy that MATMUL's gatherer reads,
             a cycle before the store). Other commands ignore the field.

ADD and AVGPOOL take their parameters from command fields (``elt``, a union of the two), not
from a weight-scratchpad word: they are a few per-command constants (at most 53 bits for ADD
and 61 for AVGPOOL on the presets) that widen the command word only within the host port's
width (already that of a weight word), while a weight word would cost a load, a range check and
a scratchpad slot per command. Neither reads ``wgt``. ``dst`` may equal a source (in place) or
lie below it: results are written only after the words they come from are read, so a write
lands on a word already read. A ``dst`` strictly inside a source's range (``src < dst < src +
words``) is an ADDRESS fault, since later reads would see results.

Weight reuse: a CONV/GEMM job whose weight reads (address, count, split) equal the previous
CONV/GEMM job's since the program started or the last FENCE skips the load (the engine keeps its
weight and requantizer memories); ``load_cycles`` counts only beats really moved. The CNN at
batch 16 runs each layer's 16 images back to back on one load; a GEMM's M tiles of one N tile
(K in one tile) share theirs. Loads are not overlapped with computing: the engine takes the next
layer's weights only when idle, and double-buffering its weight memory would double it to hide
a load of ``weight_words + blocks`` cycles (conv2 on the default preset: 76, against 8,712
cycles of compute per image).

Faults set STATUS.error with a cause code and stop the program at the faulting command (its
``pc`` is in STATUS). Opcode 0 is illegal on purpose: running into zeroed memory faults.
"""

from __future__ import annotations

from enum import IntEnum

from amaranth.lib import data

from ..conv.layouts import layer_layout, pool_layer_layout

__all__ = ["Op", "Cause", "Region", "Reg", "COUNTERS", "command_layout", "CONTROL_START",
           "CONTROL_RESET", "status_fields", "elt_layout", "ELT_OPS", "elt_ops"]


class Op(IntEnum):
    CONV = 1
    GEMM = 2
    MAXPOOL = 3
    LSTM = 4
    FENCE = 5
    DONE = 6
    ADD = 7
    AVGPOOL = 8
    SOFTMAX = 9
    LAYERNORM = 10
    GELU = 11
    MATMUL = 12
    MUL = 13


class Cause(IntEnum):
    NONE = 0
    ILLEGAL_OPCODE = 1   # not an Op, or LSTM on a config without an LSTM cell (or an
                         # attention command on one without attention units)
    ADDRESS = 2          # a src/dst/wgt range runs past its scratchpad (or ADD/AVGPOOL's dst
                         # lies strictly inside a source's range)
    SHAPE = 3            # a shape the configuration cannot run (or an inconsistent descriptor)
    TIMEOUT = 4          # no stream transfer for WATCHDOG cycles (the engines are reset)
    PC_RANGE = 5         # the program ran past the end of program memory


class Region(IntEnum):
    """Top two bits of a host address."""

    ACT = 0
    WGT = 1
    PROG = 2
    REG = 3


#: Performance counters, in register order after STATUS (all count cycles while busy, except
#: ``commands``, ``mac_slots`` and the words of the last three). Cleared when a program starts.
COUNTERS = (
    "cycles",         # cycles from start to DONE or fault
    "conv_busy",      # cycles a CONV/GEMM layer is in flight on the conv engine
    "pool_busy",      # cycles a MAXPOOL is in flight on the max-pool unit
    "lstm_busy",      # cycles an LSTM sequence is in flight on the LSTM cell
    "mac_slots",      # lanes x block x issue cycles the fabric was scheduled (padding included)
    "load_cycles",    # cycles that moved a weight or requantizer beat into the engine
    "stall_input",    # conv engine ready for activations, none available (DMA read latency)
    "overhead",       # busy cycles with no layer in flight (fetch, decode, checks, drain)
    "commands",       # commands retired
    "eltwise_busy",   # cycles an ADD or AVGPOOL is in flight on the element-wise unit (or a
                      # SOFTMAX, LAYERNORM or GELU on an attention unit)
    "act_reads",      # activation scratchpad accesses: a bank's word a unit reads (an ADD's
                      # pair 2, a DMA word 1), and words of MATMUL's copy (:mod:`.counters`)
    "act_writes",     # activation words stored by any unit (each to MATMUL's copy too)
    "weight_reads",   # weight scratchpad words read (MATMUL's B is activation reads)
)


class Reg(IntEnum):
    """Register offsets in the REG region (read: STATUS then the counters; write: CONTROL)."""

    CONTROL = 0   # write: bit 0 start (pc in bits 16 and up), bit 1 soft reset
    STATUS = 0    # read: bit 0 busy, 1 done, 2 error, bits 8-15 cause, bits 16-31 pc
    #: write: the watchdog limit in cycles (0, or at least the config's ``watchdog``: the
    #: config's); a host tightens it to catch a stall sooner. Cleared by a soft reset.
    WATCHDOG = 1


CONTROL_START = 1
CONTROL_RESET = 2


def status_fields(word: int) -> dict:
    return {"busy": word & 1, "done": (word >> 1) & 1, "error": (word >> 2) & 1,
            "cause": Cause((word >> 8) & 0xFF), "pc": (word >> 16) & 0xFFFF}


#: The commands the element-wise unit runs.
ELT_OPS = (Op.ADD, Op.AVGPOOL)


def elt_ops(cfg) -> tuple[Op, ...]:
    """The element-wise unit's commands on ``cfg``: ``ELT_OPS``, and MUL with ``elt_mul``."""
    return ELT_OPS + ((Op.MUL,) if cfg.elt_mul else ())


def elt_layout(cfg) -> data.UnionLayout:
    """The element-wise unit's command fields: ``add`` for ADD (and MUL), ``avg`` for AVGPOOL."""
    from ...numerics import ADD_SHIFT_MAX, AVG_SHIFT_MAX, MULT_BITS

    c = cfg.conv
    return data.UnionLayout({
        "add": data.StructLayout({
            "src2": range(cfg.act_depth), "mult_a": MULT_BITS, "mult_b": MULT_BITS,
            "shift": range(ADD_SHIFT_MAX + 1), "relu": 1,
        }),
        "avg": data.StructLayout({
            "width": range(c.max_width + 1), "height": range(c.max_height + 1),
            "blocks": range(cfg.avg_max_blocks + 1),
            "kw": range(c.max_width + 1), "kh": range(c.max_height + 1),
            "out_width": range(c.max_width + 1), "out_height": range(c.max_height + 1),
            "mult": cfg.avg_mult_bits, "shift": range(AVG_SHIFT_MAX + 1),
        }),
    })


def command_layout(cfg) -> data.StructLayout:
    """One command word (``cfg`` is an :class:`~.config.AccelConfig`). With an LSTM cell it
    has the LSTM command's ``lstm`` field: ``{input_size, hidden_size}``, each as wide as the
    cell's largest size needs (the LSTM's own fields, not a union with ``elt``: a handful of
    bits, and the command word stays within the host port's width). With attention units it has
    the attention commands' ``attn`` field (:func:`.attn_isa.attn_layout`)."""
    a = max(cfg.act_depth, cfg.wgt_depth)
    lstm = {}
    if cfg.lstm is not None:
        from ..lstm.cell import size_layout

        lstm = {"lstm": size_layout(cfg.lstm)}
    if cfg.attention is not None:
        from .attn_isa import attn_layout

        lstm["attn"] = attn_layout(cfg)
        lstm["fuse"] = data.StructLayout({"gelu": 1, "add": 1})   # GEMM only (:mod:`.fuse`)
    return data.StructLayout({
        "op": 4,
        "desc": layer_layout(cfg.conv),
        "pool": pool_layer_layout(cfg.conv.pool_config),
        "src": range(cfg.act_depth),
        "dst": range(cfg.act_depth),
        "wgt": range(cfg.wgt_depth),
        "count": range(a + 1),
        "kw": range(cfg.act_depth + 1),
        "nb": range(cfg.act_depth + 1),
        "elt": elt_layout(cfg),
        **lstm,
    })
