"""Energy of one accelerator run from its performance counters: an event-count model.

energy = sum over events (count x energy per event, from the cited table :mod:`.table` and the
CACTI SRAM figures :mod:`.sram`) + per-cycle clock energy of the flip-flops + SRAM leakage x
time, each as a ``(low, high)`` range at the chosen node. The events, from the counters of
:data:`hwaccel.generators.accel.isa.COUNTERS` (cycle model :func:`~hwaccel.generators.accel.
perf.program_perf`, equal to the RTL's):

``mac``           ``mac_slots`` (lanes x block x issue cycles) int8 multiplies and one add each
                  (the column sum into ``block`` accumulators: int16 to int32 adds), plus the
                  LSTM cell's ``lanes`` multipliers every ``lstm_busy`` cycle. Low: only the
                  useful MACs (``macs`` when given: zero-padded lanes barely switch) with 16-bit
                  adds; high: every slot with 32-bit adds.
``requantize``    one int32 multiply per lane of every activation word written (``act_writes``
                  x lanes; pool and copy writes are charged too: an upper bound).
``act_sram``      ``act_reads`` and ``act_writes`` on one bank of the activation scratchpad
                  (``act_depth / 2`` words of ``act_bits``).
``weight_sram``   ``weight_reads`` of the weight scratchpad (``wgt_depth x wgt_bits``).
``engine_sram``   the conv engine's own memories: its weight memory written once per load beat
                  (``load_cycles``) and read every issue cycle (``mac_slots / macs``); its line
                  buffer's ``row_slots`` row memories all read every issue cycle and written
                  once per activation word read (``act_reads``: an upper bound).
``clock``         every flip-flop clocked every cycle (no clock gating): ``cycles`` x flip-flops
                  x energy per flip-flop and cycle; idle engines cost this too.
``host``          DRAM traffic of the host: the program image loaded and the outputs read back
                  (``host_bits``, or ``host_words`` x the host port's width), per 64 bits
                  (the DRAM is off-chip: its energy does not scale with the node).
``static``        the SRAM macros' leakage x ``cycles / clock_mhz``.

Logic leakage, the partial-sum memory's and program memory's accesses, the element-wise,
max-pool and attention units' datapaths are not modelled (their memories' leakage is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sram import sram_range
from .table import check_node, energy_factor, event, source_text

__all__ = ["Energy", "estimate", "REQUIRED", "DEFAULT_CLOCK_MHZ", "memories", "flip_flop_count"]

#: Counters the model reads (the first six are the accelerator's own since long; the last
#: three count scratchpad accesses).
REQUIRED = ("cycles", "conv_busy", "pool_busy", "lstm_busy", "eltwise_busy", "mac_slots",
            "load_cycles", "act_reads", "act_writes", "weight_reads")
#: The clock static energy is charged at when none is given: a stated assumption.
DEFAULT_CLOCK_MHZ = 500.0


@dataclass(frozen=True)
class Energy:
    """An energy range (µJ) with its per-component breakdown and what it rests on."""

    low_uj: float
    high_uj: float
    node: int
    breakdown: dict[str, tuple[float, float]]
    sources: list[str]
    clock_mhz: float | None = None
    events: dict = field(default_factory=dict)
    label: str = "ASIC estimate"

    def to_json(self) -> dict:
        return {"low_uj": self.low_uj, "high_uj": self.high_uj, "node": self.node,
                "clock_mhz": self.clock_mhz, "label": self.label,
                "breakdown": {k: list(v) for k, v in self.breakdown.items()},
                "events": self.events, "sources": self.sources}


def _counters(counters: dict) -> dict:
    if not isinstance(counters, dict):
        raise TypeError(f"counters must be a dict of counter name -> count, not {counters!r}")
    missing = [k for k in REQUIRED if k not in counters]
    if missing:
        raise ValueError(f"counters lack {', '.join(missing)} (the energy model needs "
                         f"{', '.join(REQUIRED)})")
    out = {}
    for k in REQUIRED:
        v = counters[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"counter {k} must be a non-negative integer, not {v!r}")
        out[k] = v
    return out


def memories(cfg) -> dict[str, tuple[int, int, int]]:
    """``name -> (bits, width, count)`` of the SRAM macros of accelerator ``cfg``."""
    from ..generators.accel.isa import command_layout

    c = cfg.conv
    mems = {"act_bank": (cfg.act_depth // 2 * cfg.act_bits, cfg.act_bits, 2),
            "weight": (cfg.wgt_depth * cfg.wgt_bits, cfg.wgt_bits, 1),
            "engine_weight": (c.weight_depth * c.macs * 8, c.macs * 8, 1),
            "line_buffer_row": (c.row_words * c.lanes * 8, c.lanes * 8, c.row_slots),
            "psum": (cfg.psum_depth * c.block * c.acc_bits, c.block * c.acc_bits, 1),
            "program": (cfg.prog_depth * command_layout(cfg).size, command_layout(cfg).size, 1)}
    return mems


def flip_flop_count(cfg) -> int:
    """Estimated flip-flops of ``cfg``: the line through two synthesized presets (table entries
    ``flip_flops_fixed`` + ``flip_flops_per_mac`` x MAC units)."""
    fixed, per = event("flip_flops_fixed")[0], event("flip_flops_per_mac")[0]
    return round(fixed + per * cfg.macs)


def _add(parts: dict, name: str, lo: float, hi: float) -> None:
    a, b = parts.get(name, (0.0, 0.0))
    parts[name] = (a + lo, b + hi)


def estimate(cfg, counters: dict, *, node: int = 45, host_words: int = 0,
             host_bits: int | None = None, clock_mhz: float | None = None,
             macs: int | None = None, flip_flops: int | None = None) -> Energy:
    """The energy range of the run whose ``counters`` accelerator ``cfg`` reported.

    ``host_words``: words the host moved (program image in, outputs out), charged at the host
    port's ``cfg.data_bits`` unless ``host_bits`` gives the exact bits. ``clock_mhz``: the clock
    static energy is charged at (:data:`DEFAULT_CLOCK_MHZ` when None, stated in the result).
    ``macs``: useful MACs of the run, when known (the low end of ``mac``). ``flip_flops``: the
    design's flip-flop count (else :func:`flip_flop_count`'s estimate)."""
    from ..generators.accel.config import AccelConfig

    if not isinstance(cfg, AccelConfig):
        raise TypeError(f"cfg must be an AccelConfig, not {cfg!r}")
    node = check_node(node)
    n = _counters(counters)
    for name, v in (("host_words", host_words), ("host_bits", host_bits), ("macs", macs),
                    ("flip_flops", flip_flops)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"{name} must be a non-negative integer, not {v!r}")
    if clock_mhz is not None and not (isinstance(clock_mhz, (int, float)) and clock_mhz > 0):
        raise ValueError(f"clock_mhz must be a positive number, not {clock_mhz!r}")
    mhz = float(clock_mhz) if clock_mhz is not None else DEFAULT_CLOCK_MHZ
    flo, fhi = energy_factor(node)
    pj: dict[str, tuple[float, float]] = {}   # picojoules until the end

    # MACs: int8 multiply and the add into the column sum.
    m8, a16, a32 = event("int8_mult"), event("int16_add"), event("int32_add")
    lstm_slots = n["lstm_busy"] * cfg.lstm.lanes if cfg.lstm is not None else 0
    slots = n["mac_slots"] + lstm_slots
    useful = slots if macs is None else min(macs, slots)
    _add(pj, "mac", useful * (m8[0] + a16[0]) * flo, slots * (m8[1] + a32[1]) * fhi)
    m32 = event("int32_mult")
    values = n["act_writes"] * cfg.lanes
    _add(pj, "requantize", values * m32[0] * flo, values * m32[1] * fhi)

    mems = memories(cfg)
    rng = {k: sram_range(bits, w, node) for k, (bits, w, _) in mems.items()}

    def access(part, mem, reads, writes):
        r, w = rng[mem]["read_pj"], rng[mem]["write_pj"]
        _add(pj, part, reads * r[0] + writes * w[0], reads * r[1] + writes * w[1])

    access("act_sram", "act_bank", n["act_reads"], n["act_writes"])
    access("weight_sram", "weight", n["weight_reads"], 0)
    issue = n["mac_slots"] // cfg.macs
    access("engine_sram", "engine_weight", issue, n["load_cycles"])
    access("engine_sram", "line_buffer_row", issue * cfg.conv.row_slots, n["act_reads"])

    ff = flip_flop_count(cfg) if flip_flops is None else flip_flops
    e_ff = event("flip_flop_clock")
    _add(pj, "clock", n["cycles"] * ff * e_ff[0] * flo, n["cycles"] * ff * e_ff[1] * fhi)

    bits = host_words * cfg.data_bits if host_bits is None else host_bits
    d = event("dram_64b")
    _add(pj, "host", bits / 64 * d[0], bits / 64 * d[1])   # off-chip DRAM: not node-scaled

    seconds = n["cycles"] / (mhz * 1e6)
    leak = [sum(rng[k]["leakage_mw"][i] * count for k, (_, _, count) in mems.items())
            for i in (0, 1)]
    _add(pj, "static", leak[0] * 1e-3 * seconds * 1e12, leak[1] * 1e-3 * seconds * 1e12)

    breakdown = {k: (lo * 1e-6, hi * 1e-6) for k, (lo, hi) in pj.items()}
    busy = {k: n[f"{k}_busy"] for k in ("conv", "pool", "lstm", "eltwise")}
    events = {"cycles": n["cycles"], "mac_slots": n["mac_slots"], "lstm_mac_slots": lstm_slots,
              "useful_macs": macs, "issue_cycles": issue, "act_reads": n["act_reads"],
              "act_writes": n["act_writes"], "weight_reads": n["weight_reads"],
              "load_cycles": n["load_cycles"], "host_bits": bits, "flip_flops": ff,
              "flip_flops_source": "given" if flip_flops is not None else "estimate",
              "busy": busy, "idle": {k: n["cycles"] - v for k, v in busy.items()},
              "energy_factor": [flo, fhi], "clock_mhz_assumed": clock_mhz is None}
    sources = [source_text(k) for k in ("horowitz2014", "cacti7", "stillmaker2017",
                                        "hwaccel_synth")]
    sources.append(f"static energy at {mhz:g} MHz"
                   + (" (assumed: no clock given)" if clock_mhz is None else ""))
    sources.append("estimates (see data/events.json): flip-flop clock energy, flip-flop count "
                   "when not given, supplies below 45 nm, 28 nm interpolated; not modelled: "
                   "logic leakage, psum/program memory accesses, element-wise/pool/attention "
                   "datapaths")
    return Energy(sum(lo for lo, _ in breakdown.values()),
                  sum(hi for _, hi in breakdown.values()), node, breakdown, sources, mhz,
                  events)
