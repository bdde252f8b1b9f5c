"""``hwaccel bench parallel --random``: points of every mode, each equal to its model.

Five points of one seed draw dp, pp, tp, and hybrids of tp groups and of dp groups (pp and the
dp-group lanes on the pp tests' ``tiny3`` top, tp's shares on the Verilated tiny accelerator):
every point's simulated cycles equal its model's, every sample's outputs golden's (the dp-group
lanes here on one shared host port).
"""

from __future__ import annotations

import argparse

from hwaccel.bench import parallel as bench


def test_random_points_of_every_mode_equal_their_models():
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    rows = bench.run(p.parse_args(["--random", "5", "--seed", "256", "--links", "2:16"]))
    assert len(rows) == 5 and [r["point"] for r in rows] == list(range(5))
    kinds = {(r["mode"], "dp" if "-way dp" in r["partition"] else
              "tp" if "-way tp" in r["partition"] else "") for r in rows}
    # the seed draws every kind (a change in the draw that loses one fails here)
    assert kinds == {("dp", ""), ("pp", ""), ("tp", ""), ("hybrid", "tp"), ("hybrid", "dp")}
    # its hybrid of dp groups has the lanes on one shared host port
    assert [r["partition"] for r in rows if "-way dp" in r["partition"]] == \
        ["cuts [4] x 2-way dp, shared port"]
    for r in rows:
        assert set(bench.COLUMNS) <= set(r), r
        assert r["cycles_match"] and r["cycles"] == r["model_cycles"], r
        assert r["mismatches"] == 0, r
        if r["mode"] == "hybrid":
            assert r["N"] >= 4, r                    # two stages of two at least (this seed)
