"""The routed-path lister (:mod:`hwaccel.impl.routed_paths`) on SDF text of nextpnr's form.

``tests/test_impl.py`` checks it against a real placement: its slowest path is nextpnr's
critical path, start, end and delay."""

from __future__ import annotations

import pytest

from hwaccel.impl.routed_paths import main, over, read_sdf, slowest

# Two registers a and b feed a LUT into register c's DI; b also drives d's M over a long
# route; a LUT loop (l1 <-> l2) with no register in front feeds e. Times in ps, triples min:typ:max.
SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT a_TRELLIS_FF_Q/Q lut_LUT4_Z/A (100:200:300) (100:200:300))
        (INTERCONNECT b\[3\]_TRELLIS_FF_Q_2/Q lut_LUT4_Z/B (100:400:900) (100:400:900))
        (INTERCONNECT lut_LUT4_Z/F c_TRELLIS_FF_Q_7/DI (0:0:50) (0:0:50))
        (INTERCONNECT b\[3\]_TRELLIS_FF_Q_2/Q d\$x_TRELLIS_FF_Q/M (1000:1500:2000) (1000:1500:2000))
        (INTERCONNECT l1_LUT4_Z/F l2_LUT4_Z/A (10:10:10) (10:10:10))
        (INTERCONNECT l2_LUT4_Z/F l1_LUT4_Z/A (10:10:10) (10:10:10))
        (INTERCONNECT l2_LUT4_Z/F e_TRELLIS_FF_Q/DI (10:10:10) (10:10:10))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE a_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE
        (IOPATH CLK Q (430:477:525) (430:477:525))
    ))
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE b\[3\]_TRELLIS_FF_Q_2)
    (DELAY (ABSOLUTE
        (IOPATH CLK Q (430:477:500) (430:477:500))
    ))
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE lut_LUT4_Z)
    (DELAY (ABSOLUTE
        (IOPATH A F (200:218:236) (200:218:236))
        (IOPATH B F (200:218:240) (200:218:240))
    ))
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE l1_LUT4_Z)
    (DELAY (ABSOLUTE
        (IOPATH A F (200:218:236) (200:218:236))
    ))
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE l2_LUT4_Z)
    (DELAY (ABSOLUTE
        (IOPATH A F (200:218:236) (200:218:236))
    ))
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE c_TRELLIS_FF_Q_7)
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (0:0:40) (267:285:303))
      (SETUPHOLD (negedge DI) (posedge CLK) (0:0:40) (267:285:303))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE d\$x_TRELLIS_FF_Q)
    (TIMINGCHECK
      (SETUPHOLD (posedge M) (posedge CLK) (0:0:0) (233:268:303))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE e_TRELLIS_FF_Q)
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (233:268:303))
    )
  )
)
"""


def test_the_graph_takes_the_slow_corner_and_unescapes_names():
    cells, routes, starts, setups = read_sdf(SDF)
    assert starts == {("a_TRELLIS_FF_Q", "Q"): 0.525, ("b[3]_TRELLIS_FF_Q_2", "Q"): 0.5}
    assert routes[("d$x_TRELLIS_FF_Q", "M")] == [("b[3]_TRELLIS_FF_Q_2", "Q", 2.0)]
    assert cells[("lut_LUT4_Z", "F")] == [("lut_LUT4_Z", "A", 0.236), ("lut_LUT4_Z", "B", 0.24)]
    assert setups[("c_TRELLIS_FF_Q_7", "DI")] == 0.04   # setup: the first triple


def test_paths_are_the_latest_arrivals_with_their_setup_slowest_first():
    paths = slowest(SDF, top=10)
    # b -> d: 0.5 + 2.0 + 0 setup; b -> lut -> c: 0.5 + 0.9 + 0.24 + 0.05 + 0.04 (a's
    # 0.525 + 0.3 + 0.236 arrives earlier); the loop, with no register in front, is cut and
    # times nothing (e has no path, as from a constant).
    assert [(p.start, p.end, p.ns) for p in paths[:2]] == [
        ("b", "d$x_TRELLIS_FF_Q/M", 2.5), ("b", "c_TRELLIS_FF_Q_7/DI", 1.73)]
    assert paths[0].routing_ns == pytest.approx(2.0)
    assert [s[1:] for s in paths[1].steps] == [
        ("cell", "b[3]_TRELLIS_FF_Q_2/Q"), ("route", "lut_LUT4_Z/B"), ("cell", "lut_LUT4_Z/F"),
        ("route", "c_TRELLIS_FF_Q_7/DI")]
    assert paths[1].steps[-1][0] == pytest.approx(1.69)   # arrival, before the setup
    assert [p.end for p in paths] == ["d$x_TRELLIS_FF_Q/M", "c_TRELLIS_FF_Q_7/DI"]
    assert len(slowest(SDF, top=1)) == 1


def test_the_command_lists_paths_and_names_a_bad_file(tmp_path, capsys):
    f = tmp_path / "d.sdf"
    f.write_text(SDF)
    main([str(f), "--top", "2", "--steps"])
    out = capsys.readouterr().out
    assert "2.500 ns" in out and "b -> d$x_TRELLIS_FF_Q/M" in out and "route" in out
    with pytest.raises(SystemExit, match="routed_paths: .*missing.sdf"):
        main([str(tmp_path / "missing.sdf")])


def test_over_counts_late_inputs_by_their_units(tmp_path, capsys):
    # b's d input (2.5 ns) and c's (1.73 ns); e times nothing. Put b and d in units.
    sdf = SDF.replace("b\\[3\\]_TRELLIS", "u.b\\[3\\]_TRELLIS").replace(
        "d\\$x_TRELLIS", "v.w.d\\$x_TRELLIS")
    assert over(sdf, 1.0) == {("u", "(top)"): 1, ("u", "v"): 1}
    assert over(sdf, 2.0) == {("u", "v"): 1}
    assert over(sdf, 2.5) == {}   # not later than the period: it meets it
    f = tmp_path / "d.sdf"
    f.write_text(sdf)
    main([str(f), "--over", "2"])
    out = capsys.readouterr().out
    assert "1 clocked inputs later than 2 ns (500.0 MHz)" in out and "1  u -> v" in out


def test_start_shows_the_paths_another_start_hides(tmp_path, capsys):
    # c's slowest path starts at b (1.73 ns); a's into c (0.525 + 0.3 + 0.236 + 0.05 + 0.04)
    # shows only with --start a, and nothing else starts there.
    paths = slowest(SDF, top=10, start="a")
    assert [(p.start, p.end, p.ns) for p in paths] == [("a", "c_TRELLIS_FF_Q_7/DI", 1.151)]
    assert [p.start for p in slowest(SDF, top=10, start="b")] == ["b", "b"]
    assert over(SDF, 1.0, start="a") == {("(top)", "(top)"): 1}
    unit = SDF.replace("b\\[3\\]_TRELLIS", "u.b\\[3\\]_TRELLIS")
    assert {p.start for p in slowest(unit, start="u.")} == {"u.b"}
    with pytest.raises(ValueError, match="no clocked output of start signal 'nope'"):
        slowest(SDF, start="nope")
    f = tmp_path / "d.sdf"
    f.write_text(SDF)
    main([str(f), "--start", "a", "--over", "1"])
    assert "1 clocked inputs later than 1 ns (1000.0 MHz) from a" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no clocked output of start signal 'nope'"):
        main([str(f), "--start", "nope"])
