"""The attention commands (SOFTMAX, LAYERNORM, GELU, MATMUL): fields, checks, the golden
interpreter's execution and the cycle model's figures, defined once (:mod:`.isa` documents the
commands; :mod:`.model` and :mod:`.perf` call this module).

They exist on a configuration with ``AccelConfig.attention`` set (the units' sizes); without it
their opcodes are ILLEGAL_OPCODE, as an LSTM is without a cell, and the command word has no
``attn`` field (so presets without the units keep their command word and Verilog).

Cycle figures (``eltwise_busy`` for SOFTMAX, LAYERNORM and GELU, ``conv_busy`` for MATMUL) are
this ISA's definition, built from the units' exact models (:mod:`hwaccel.generators.attention.
perf`) and the conv engine's (:func:`hwaccel.generators.conv.perf.job_cycles`). SOFTMAX,
LAYERNORM and GELU run on the RTL (:mod:`.attn_path`, checks in :mod:`.attn_checks`), which
meets the figures exactly: the job's first cycle after ISSUE, then ``ATTN_DMA`` cycles of
weight-DMA read latency before the first load beat reaches the unit, the load (one beat a
cycle; GELU's rows enter after its last beat, SOFTMAX's and LAYERNORM's ``ATTN_ROWS`` after
its first, beside the rest, the stage that reads the load waiting until it is written), the
unit's rows (its model, from the first row word in to the last word out) and ``ATTN_STORE``
cycle after the last word (it is stored; the job ends). MATMUL runs on the conv engine, B
gathered from the activation scratchpad (:mod:`.matmul_gather`), as :func:`matmul_cycles`
defines.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.lib import data

from ...numerics import MULT_BITS, SHIFT_MAX, requantize
from ...numerics.gelu import GeluParams, gelu_int
from ...numerics.layernorm import LN_EPS_MAX, LN_SHIFT_MAX, LayerNormParams, layernorm_int
from ...numerics.softmax import SoftmaxParams, softmax_int
from ..attention.packing import load_beats, load_spec, unpack
from ..attention.perf import load_words
from .isa import Op

__all__ = ["ATTN_OPS", "attn_layout", "ln_setup_layout", "ln_param_layout", "attn_check",
           "attn_golden", "attn_cycles", "matmul_gemm", "ATTN_DMA", "ATTN_STORE", "ATTN_ROWS",
           "MATMUL_MAX_K", "signed", "matmul_cycles", "matmul_last"]

#: The commands of the attention units and the activation matmul.
ATTN_OPS = (Op.SOFTMAX, Op.LAYERNORM, Op.GELU, Op.MATMUL)
#: Busy cycles of a unit job before its first load beat reaches the unit (the weight DMA's
#: read latency: address, then the read port's data into its FIFO), and after the unit's last
#: word out (stored; the job is done).
ATTN_DMA = 2
ATTN_STORE = 1
#: SOFTMAX and LAYERNORM: cycles from the first load beat taken (the exponent table's first,
#: LayerNorm's setup word) to the first row word's (the rows go in beside the rest of the load).
ATTN_ROWS = 1
#: Longest K of a MATMUL: K products of at most 2**14 stay below 2**31 (int32 sums, as
#: :func:`hwaccel.numerics.requantize` takes them).
MATMUL_MAX_K = (1 << 17) - 1
#: Width of a LayerNorm parameter's ``B`` (signed): ``|B| < 2**55``.
LN_B_BITS = 56


def attn_layout(cfg) -> data.StructLayout:
    """The ``attn`` field of a command word (on a config with attention units)."""
    a = cfg.attention
    elems = cfg.act_depth * cfg.lanes
    return data.StructLayout({
        "n": range(max(a.max_len, a.max_channels, elems) + 1),   # row length / C / N
        "causal": 1,
        "src2": range(cfg.act_depth),                              # MATMUL's B
        "k": range(MATMUL_MAX_K + 1),
        "sa": range(cfg.act_depth + 1), "sb": range(cfg.act_depth + 1),
        "sc": range(cfg.act_depth + 1),
        "transpose": 1,
        "mult": MULT_BITS, "shift": range(SHIFT_MAX + 1),
    })


def ln_setup_layout() -> data.StructLayout:
    """LAYERNORM's first weight word: the eps term ``E`` and the shift ``S``."""
    return data.StructLayout({"eps": range(LN_EPS_MAX), "shift": range(LN_SHIFT_MAX + 1)})


def ln_param_layout() -> data.StructLayout:
    """One LayerNorm channel's weight word: ``G`` and ``B``, two's complement."""
    return data.StructLayout({"g": MULT_BITS + 1, "b": LN_B_BITS})


def signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def _unpack(layout, word: int) -> dict:
    out = {}
    for name, f in layout:
        out[name] = (word >> f.offset) & ((1 << f.width) - 1)
    return out


def _words(n: int, lanes: int) -> int:
    return math.ceil(n / lanes)


def _span(base: int, rows: int, stride: int, words: int) -> tuple[int, int]:
    return base, base + (rows - 1) * stride + words


def _inside(dst: int, lo: int, hi: int) -> bool:
    return lo < dst < hi


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def attn_check(cfg, c: dict, wgt: list[int]):
    """The command's fault cause (``"SHAPE"``, ``"ADDRESS"``) or None, in the processor's order:
    the fields, then the address ranges, then (SOFTMAX, LAYERNORM) the parameters as they load."""
    a, f, lanes = cfg.attention, c["attn"], cfg.lanes
    ad, wd, op, rows = cfg.act_depth, cfg.wgt_depth, c["op"], c["count"]
    n = f["n"]
    if op == Op.MATMUL:
        m, k = rows, f["k"]
        kw, nw = _words(k, lanes), _words(n, lanes)
        bw, brows = (kw, n) if f["transpose"] else (nw, k)
        if not (m and k and n and f["shift"] >= 1 and f["sa"] >= kw and f["sb"] >= bw
                and f["sc"] >= nw):
            return "SHAPE"
        sa, sb, sc = (_span(c["src"], m, f["sa"], kw), _span(f["src2"], brows, f["sb"], bw),
                      _span(c["dst"], m, f["sc"], nw))
        if max(sa[1], sb[1], sc[1]) > ad or _overlap(sc, sa) or _overlap(sc, sb):
            return "ADDRESS"
        return None
    if op == Op.GELU:
        if not rows:
            return "SHAPE"
        n_in, w_words = rows, load_words(a, "gelu")
    else:
        most = a.max_len if op == Op.SOFTMAX else a.max_channels
        if not (rows and 1 <= n <= most) or (op == Op.SOFTMAX and f["causal"] and rows > n):
            return "SHAPE"
        n_in = rows * _words(n, lanes)
        w_words = (load_words(a, "softmax") if op == Op.SOFTMAX
                   else load_words(a, "layernorm", n))
    src, dst = c["src"], c["dst"]
    if (src + n_in > ad or dst + n_in > ad or c["wgt"] + w_words > wd
            or _inside(dst, src, src + n_in)):
        return "ADDRESS"
    if op == Op.SOFTMAX and _softmax_params(cfg, c, wgt) is None:
        return "SHAPE"
    if op == Op.LAYERNORM and _ln_params(cfg, c, wgt) is None:
        return "SHAPE"
    return None


def _load(cfg, unit: str, wgt, base: int, channels: int | None = None) -> list[int]:
    """The entries (unsigned) of ``unit``'s packed load from weight word ``base`` on."""
    a = cfg.attention
    count, bits, _ = load_spec(a, unit, channels)
    beats = load_beats(count, bits, a.load_bits)
    return unpack([int(w) for w in wgt[base:base + beats]], count, bits, a.load_bits)


def _softmax_params(cfg, c, wgt):
    table = tuple(_load(cfg, "softmax", wgt, c["wgt"]))
    try:
        return SoftmaxParams(table, cfg.attention.max_len)
    except ValueError:   # an entry above 2**17, or a first entry below 2**16
        return None


def _ln_params(cfg, c, wgt):
    n, base = c["attn"]["n"], c["wgt"]
    setup = _unpack(ln_setup_layout(), wgt[base])
    pl = ln_param_layout()
    par = [_unpack(pl, e) for e in _load(cfg, "layernorm", wgt, base + 1, n)]
    try:
        return LayerNormParams(n, setup["eps"], tuple(signed(p["g"], MULT_BITS + 1) for p in par),
                               tuple(signed(p["b"], LN_B_BITS) for p in par), setup["shift"])
    except ValueError:   # G = -2**16, B = -2**55 or S = 0
        return None


def _rows(act, base: int, rows: int, stride: int, n: int, lanes: int) -> np.ndarray:
    w = _words(n, lanes)
    idx = base + np.arange(rows)[:, None] * stride + np.arange(w)[None, :]
    return act[idx].reshape(rows, w * lanes)[:, :n]


def _store(act, base: int, rows: int, stride: int, y: np.ndarray, lanes: int) -> None:
    n = y.shape[1]
    w = _words(n, lanes)
    out = np.zeros((rows, w * lanes), dtype=np.int64)
    out[:, :n] = y
    for r in range(rows):
        act[base + r * stride:base + r * stride + w] = out[r].reshape(w, lanes)


def attn_golden(cfg, act: np.ndarray, wgt: list[int], c: dict) -> None:
    """Run checked command ``c`` on ``act`` (``act_depth x lanes``) in place."""
    f, lanes, op, rows = c["attn"], cfg.lanes, c["op"], c["count"]
    n = f["n"]
    if op == Op.GELU:
        table = tuple(signed(e, 8) for e in _load(cfg, "gelu", wgt, c["wgt"]))
        act[c["dst"]:c["dst"] + rows] = gelu_int(act[c["src"]:c["src"] + rows].copy(),
                                                 GeluParams(table))
        return
    if op == Op.MATMUL:
        k = f["k"]
        x = _rows(act, c["src"], rows, f["sa"], k, lanes)
        if f["transpose"]:
            w = _rows(act, f["src2"], n, f["sb"], k, lanes).T
        else:
            w = _rows(act, f["src2"], k, f["sb"], n, lanes)
        y = requantize(x @ w, f["mult"], f["shift"])
        _store(act, c["dst"], rows, f["sc"], y, lanes)
        return
    w = _words(n, lanes)
    x = _rows(act, c["src"], rows, w, n, lanes)
    if op == Op.SOFTMAX:
        valid = np.tril(np.ones((rows, n), dtype=bool)) if f["causal"] else None
        y = softmax_int(x, _softmax_params(cfg, c, wgt), valid)
    else:
        y = layernorm_int(x, _ln_params(cfg, c, wgt))
    _store(act, c["dst"], rows, w, y, lanes)


def matmul_gemm(cfg, c: dict) -> dict:
    """The GEMM the conv engine runs for MATMUL ``c`` (for :func:`.perf.gemm_jobs`): M rows, K
    in ``ceil(K / lanes)`` words, N in ``ceil(N / block)`` blocks, a 1x1 layer template."""
    from ..conv.layer import ConvLayer, descriptor

    f, conv = c["attn"], cfg.conv
    kw, nb = _words(f["k"], cfg.lanes), _words(f["n"], conv.block)
    g, b = min(kw, conv.max_groups), min(nb, conv.max_blocks)
    desc = descriptor(conv, ConvLayer(1, 1, g * cfg.lanes, b * conv.block, 1, 1, 0, False, False))
    return {"op": Op.GEMM, "desc": desc, "count": c["count"], "kw": kw, "nb": nb, "wgt": 0}


def matmul_cycles(cfg, c: dict, *, lead: int | None = None,
                  solo: bool = False) -> tuple[int, int, int, int, int]:
    """``(busy, load cycles, stall_input, mac_slots, engine jobs)`` of decoded MATMUL ``c``.

    Per GEMM tile job (:func:`.perf.gemm_jobs` of :func:`matmul_gemm`), counted from its ISSUE
    cycle (0): B's beats are gathered from the activation scratchpad two words a cycle (two
    read ports: a beat of ``lanes`` words is ``h = ceil(lanes / 2)`` read cycles), the first
    read in cycle ``-lead`` for the command's first job (``lead``: :data:`.matmul_checks.
    GATHER_LEAD` by default, from the cycle its word loads in DECODE; one fewer after a job,
    0 for a command checked under the job before it, :func:`.perf.checked_ahead`; ``solo``:
    it started under that job, on one port, one word a cycle, a beat ``2h`` read cycles:
    :func:`.perf.gathered_ahead`) and in cycle 0 for the others. Beat ``i``'s
    last read is in cycle ``t_i = max(t_(i-1) + h, x_(i-1))`` (its gatherer holds one finished
    beat: the next one's last read waits for it to leave), the engine takes it in ``x_i =
    max(t_i + 2, x_(i-1) + 1)`` (the load state takes a beat a cycle from ``LOAD_START``), and
    the run phase begins 2 cycles after the last beat (``RUN_START - LOAD_START``, as for any
    load); the requantizer beats, made from the command's fields, load beside them. A's stream
    starts in the cycle of B's last read, or at ISSUE if that came earlier (its first word
    ``DMA_FIRST`` later), and the engine's writer stores it from the load state's first cycle
    (``LOAD_START``), so the run phase is :func:`hwaccel.generators.conv.perf.run_timeline`
    with that first word, and the job ends as any engine job does (``issue_tail`` cycles after
    the last chunk, or ``WRITE_TAIL`` after the writer's last word). ``load cycles`` counts the
    beats (``W + blocks``, as a GEMM's load does); ``stall_input`` the writer's wait for A
    (from ``LOAD_START`` to A's first word) and the run's own input stalls."""
    busy = load = stalls = slots = n = 0
    for b, ld, st, sl, _x, _blocks in _matmul_jobs(cfg, c, lead, solo):
        busy, load, stalls, slots, n = busy + b, load + ld, stalls + st, slots + sl, n + 1
    return busy, load, stalls, slots, n


def matmul_last(cfg, c: dict, *, lead: int | None = None, solo: bool = False) -> tuple[int, int]:
    """``(busy, idle)`` of decoded MATMUL ``c``'s last tile job (:func:`matmul_cycles`): its
    busy cycles, and the first cycle from its ISSUE the gatherer is idle (its last beat taken,
    ``x + 1``, and its requantizer beats, one a cycle from ``LOAD_START``)."""
    from ..conv.perf import LOAD_START

    *_, (busy, _ld, _st, _sl, x, blocks) = _matmul_jobs(cfg, c, lead, solo)
    return busy, max(x + 1, LOAD_START + blocks)


def _matmul_jobs(cfg, c: dict, lead: int | None, solo: bool):
    """Per tile job of :func:`matmul_cycles`: ``(busy, load, stalls, slots, x, blocks)``, ``x``
    the cycle the engine takes the last beat."""
    from ..conv.perf import (
        DMA_FIRST,
        LOAD_START,
        RUN_START,
        WRITE_TAIL,
        issue_tail,
        run_timeline,
    )
    from .matmul_checks import GATHER_LEAD
    from .perf import gemm_jobs

    lead = GATHER_LEAD if lead is None else lead
    h = -(-cfg.lanes // 2)
    out = []
    for j, (desc, _reads) in enumerate(gemm_jobs(cfg, matmul_gemm(cfg, c))):
        first = 2 * h if (j == 0 and solo) else h     # read cycles of beat 0
        t = (-lead if j == 0 else 0) - 1 + first   # beat 0's last read
        x = max(t + 2, LOAD_START)
        for _ in range(desc["weight_words"] - 1):
            t = max(t + h, x)
            x = max(t + 2, x + 1)
        start = x + RUN_START - LOAD_START   # the run phase, after the last beat
        tl = run_timeline(cfg.conv, desc, first_word=max(t, 0) + DMA_FIRST - start,
                          write_from=LOAD_START - start)
        busy = start + max(tl.last_issue + issue_tail(cfg.conv), tl.last_write + WRITE_TAIL)
        out.append((busy, desc["weight_words"] + desc["blocks"], tl.input_stalls,
                    desc["out_width"] * desc["out_height"] * desc["weight_words"] * cfg.macs,
                    x, desc["blocks"]))
    return out


def attn_cycles(cfg, c: dict, *, lead: int | None = None,
                solo: bool = False) -> tuple[int, int, int, int]:
    """``(busy, load cycles, mac_slots, engine jobs)`` of decoded SOFTMAX/LAYERNORM/GELU/MATMUL
    ``c`` (the ISA's definition; see the module docstring); ``lead``: a MATMUL's gather lead
    (:func:`matmul_cycles`)."""
    from ..attention.perf import (
        gelu_cycles,
        layernorm_schedule,
        load_cycles,
        load_words,
        softmax_schedule,
    )

    f, op, rows = c["attn"], c["op"], c["count"]
    if op == Op.MATMUL:
        busy, load, _, slots, jobs = matmul_cycles(cfg, c, lead=lead, solo=solo)
        return busy, load, slots, jobs
    # The load takes ``load_cycles`` (beats and the unit's writes of their rows); the counter
    # ``load_cycles`` counts the cycles that moved a beat, one a beat (``load_words``).
    a = cfg.attention
    if op == Op.GELU:
        load = load_cycles(a, "gelu")
        busy = ATTN_DMA + load + gelu_cycles(rows) + ATTN_STORE
        return busy, load_words(a, "gelu"), 0, 1
    # The rows enter from ATTN_ROWS cycles after the first beat; the stage that reads the
    # load starts a row from ``load`` cycles after it (the load written).
    if op == Op.SOFTMAX:
        load, beats = load_cycles(a, "softmax"), load_words(a, "softmax")
        last = softmax_schedule(a, [f["n"]] * rows, table_at=load - ATTN_ROWS)[-1].last_out
    else:
        load, beats = load_cycles(a, "layernorm", f["n"]), load_words(a, "layernorm", f["n"])
        last = layernorm_schedule(a, f["n"], rows, params_at=load - ATTN_ROWS)[-1].last_out
    return ATTN_DMA + ATTN_ROWS + last + 1 + ATTN_STORE, beats, 0, 1
