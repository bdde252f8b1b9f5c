"""The LSTM engine's Verilog under Verilator + cocotb, bit-exact against the golden model.

* One cell (I = 7, H = 5, P = 6: neither I nor H a multiple of P, and P does not divide 4H):
  three loads of random integer parameters (random, +-128/127 extremes, saturating
  requantizers and biases), each followed by its sequences back to back -- 55 sequences of T = 1
  to 100, every h vector compared -- with random idle cycles on every input and random
  back-pressure on h. Weights are reloaded between the groups.
* Two stacked layers: two cell instances in one wrapper (``LstmStack``), layer 0 (P = 1) emitting
  every step straight into layer 1's x stream, layer 1 (P = 5) emitting only each sequence's
  last step; the top h is compared with the golden layers composed in software.
"""

from __future__ import annotations

from hwaccel.generators.lstm.config import PRESETS
from hwaccel.sim.runner import design_for, run_bench

TB = "sim.tb_lstm"


def test_random_sequences_bit_exact(seed):
    cfg = PRESETS["small_p6"]
    loads = [["random", 20], ["extremes", 15], ["saturating", 20]]
    res = run_bench(design_for(cfg), TB, {"mode": "random", "seed": seed, "loads": loads,
                                          "max_len": 100, "idle": 0.3, "backpressure": 0.3},
                    seed=seed)
    cases = res["cases"]
    lengths = [t for c in cases for t in c["lengths"]]
    assert [c["style"] for c in cases] == [s for s, _ in loads]
    assert len(lengths) >= 50 and min(lengths) == 1 and max(lengths) == 100
    assert sum(c["h_vectors"] for c in cases) == sum(lengths)   # output "all": every step
    assert all(c["mismatches"] == 0 for c in cases)


def test_two_stacked_layers_through_streams(seed):
    cfg = PRESETS["small"]
    assert cfg.kind == "lstm_stack" and [c.output for c in cfg.layers] == ["all", "last"]
    loads = [["random", 4], ["saturating", 4]]
    res = run_bench(design_for(cfg), TB, {"mode": "random", "seed": seed, "loads": loads,
                                          "max_len": 30, "idle": 0.3, "backpressure": 0.3},
                    seed=seed)
    cases = res["cases"]
    assert sum(c["h_vectors"] for c in cases) == sum(len(c["lengths"]) for c in cases)
    assert all(c["mismatches"] == 0 for c in cases)
