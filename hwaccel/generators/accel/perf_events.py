"""The energy counters in the cycle model (:mod:`.perf`): ``act_reads``, ``act_writes`` and
``weight_reads`` of one command, as the RTL counts them (:mod:`.counters` defines the events).

* CONV: the DMA reads ``width x height x groups`` words (a depthwise CONV ``width x height``
  per channel group, ``nb`` groups) and the store writes ``out_width x out_height x blocks``
  beats, ``word_beats`` a word (halved each way when it pools; a depthwise one ``nb`` words a
  pixel);
* GEMM (and MATMUL's A and C): per tile job (:func:`.model._gemm_jobs`, the processor's walk)
  ``rows x K words`` of A read and, at its last K tile, ``rows x N words`` of C written; a
  fused ADD reads the residual of every result word of every job (a partial K tile's too);
* MAXPOOL: ``width x height x blocks`` read, a quarter of the pixels written;
* LSTM: ``ceil(I / lanes)`` words of x read and ``ceil(H / lanes)`` of h written a step;
* ADD, MUL: ``2 x ceil(count / 2)`` reads (a pair of ``a``, then the same pair of ``b``), each two
  words from the two banks; ``count`` written. AVGPOOL: a word read per window word, one
  written per output pixel and block;
* SOFTMAX, LAYERNORM: ``rows x ceil(n / lanes)`` words read and written; GELU: ``rows``;
* MATMUL: B's words read by the gatherer (:mod:`.matmul_gather`): per tile job, per weight
  beat, the beat's rows below K (B) or N (B transposed), one word each, on either port.

``weight_reads`` is the weight DMA's words: the load beats of every command but MATMUL (whose
beats are gathered from the activation scratchpad), a fused GELU's table included.
"""

from __future__ import annotations

from .attn_isa import matmul_gemm
from .fuse_model import fused_add
from .isa import Op
from .model import _gemm_jobs

__all__ = ["EVENTS", "command_events", "program_counters"]

#: The energy counters, in :data:`.isa.COUNTERS` order.
EVENTS = ("act_reads", "act_writes", "weight_reads")


def _words(n: int, lanes: int) -> int:
    return -(-n // lanes)


def _tiles(cfg, c: dict, *, residual: bool) -> tuple[int, int]:
    """``(A words read, C words written)`` of a GEMM-shaped command's tile jobs; with
    ``residual`` each job's result words are read once more (a fused ADD)."""
    reads = writes = 0
    for _n0, bt, k0, gt, tile, _key in _gemm_jobs(cfg, c):
        reads += tile * gt + (tile * bt if residual else 0)
        if k0 + gt == c["kw"]:
            writes += tile * bt // cfg.word_beats
    return reads, writes


def _gathered(cfg, c: dict) -> int:
    """Words of B MATMUL ``c``'s gatherer reads: a beat's rows below K (B) or N (B
    transposed), ``lanes`` rows a beat, each beat of each tile job."""
    f, lanes = c["attn"], cfg.lanes
    total = 0
    for n0, bt, k0, gt, _tile, _key in _gemm_jobs(cfg, matmul_gemm(cfg, c)):
        if f["transpose"]:   # the rows are N: the same for every K word of a block
            total += gt * (min(f["n"], (n0 + bt) * lanes) - n0 * lanes)
        else:                # the rows are K: the same for every block
            total += bt * (min(f["k"], (k0 + gt) * lanes) - k0 * lanes)
    return total


def command_events(cfg, c: dict, load: int) -> tuple[int, int, int]:
    """``(act_reads, act_writes, weight_reads)`` of decoded command ``c``, whose weight load
    beats (the cycle model's ``load_cycles``) are ``load``."""
    op, d, p, lanes = c["op"], c["desc"], c["pool"], cfg.lanes
    if op == Op.CONV:
        div = 2 if d["pool"] else 1
        pixels = (d["out_width"] // div) * (d["out_height"] // div)
        per_in, per_out = ((c["nb"], c["nb"]) if d["depthwise"]
                           else (d["groups"], d["blocks"] // cfg.word_beats))
        return d["width"] * d["height"] * per_in, pixels * per_out, load
    if op == Op.GEMM:
        return (*_tiles(cfg, c, residual=fused_add(cfg, c)), load)
    if op == Op.MAXPOOL:
        return (p["width"] * p["height"] * p["blocks"],
                (p["width"] // 2) * (p["height"] // 2) * p["blocks"], load)
    if op == Op.LSTM:
        from .lstm_checks import lstm_words

        gx, gh, _ = lstm_words(cfg, c["lstm"]["input_size"], c["lstm"]["hidden_size"])
        return c["count"] * gx, c["count"] * gh, load
    if op in (Op.ADD, Op.MUL):
        return 4 * _words(c["count"], 2), c["count"], load
    if op == Op.AVGPOOL:
        v = c["elt"]["avg"]
        out = v["out_width"] * v["out_height"] * v["blocks"]
        return out * v["kh"] * v["kw"], out, load
    if op in (Op.SOFTMAX, Op.LAYERNORM):
        words = c["count"] * _words(c["attn"]["n"], lanes)
        return words, words, load
    if op == Op.GELU:
        return c["count"], c["count"], load
    if op == Op.MATMUL:
        reads, writes = _tiles(cfg, matmul_gemm(cfg, c), residual=False)
        return reads + _gathered(cfg, c), writes, 0
    return 0, 0, 0   # FENCE, DONE


def program_counters(cfg, programs) -> dict:
    """Every counter of :data:`.isa.COUNTERS` summed over ``programs`` (each with its
    ``commands``, run in turn), from the cycle model (:func:`.perf.program_perf`)."""
    from .perf import program_perf

    total: dict = {}
    for p in programs:
        for k, v in program_perf(cfg, p.commands).counters.items():
            total[k] = total.get(k, 0) + v
    return total
