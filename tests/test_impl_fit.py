"""A design that does not fit the device is refused with the resources it lacks named (from
nextpnr's utilisation table), not only nextpnr's first "no BELs remaining" line."""

from __future__ import annotations

import pytest

from hwaccel.impl import nextpnr
from hwaccel.impl.target import get_target
from hwaccel.impl.tools import ImplError

# The head of nextpnr-ecp5's log for pipeline_ecp5_x2 (two ecp5 instances) on the LFE5U-85F.
LOG = """Info: Device utilisation:
Info: \t          TRELLIS_IO:       0/    365     0%
Info: \t              DP16KD:     250/    208   120%
Info: \t          MULT18X18D:     266/    156   170%
Info: \t          TRELLIS_FF:   26300/  83640    31%
Info: \t        TRELLIS_COMB:   67233/  83640    80%

ERROR: Unable to place cell 'accel1.conv.engine.$747_MULT18X18D_P9', no BELs remaining to \
implement cell type 'MULT18X18D'
"""


def test_overused_reads_the_utilisation_table():
    assert nextpnr.overused(LOG) == {"DP16KD": (250, 208), "MULT18X18D": (266, 156)}
    fits = LOG.replace("250/    208   120%", "150/    208    72%").replace(
        "266/    156   170%", "100/    156    64%")
    assert nextpnr.overused(fits) == {}
    assert nextpnr.overused("") == {}


def test_a_design_that_does_not_fit_names_what_it_lacks(tmp_path, monkeypatch):
    def failing(tool, args, *, cwd, log, what):
        log.write_text(LOG)
        raise ImplError(f"{tool} {what} failed (exit 125): ERROR: Unable to place cell")

    monkeypatch.setattr(nextpnr, "run_tool", failing)
    with pytest.raises(ImplError, match=r"top\.json does not fit Lattice ECP5 LFE5U-85F.*: it "
                                        r"needs DP16KD 250 of 208, MULT18X18D 266 of 156"):
        nextpnr.run_nextpnr(tmp_path / "top.json", get_target("ecp5"), tmp_path, freq_mhz=100)

    def other(tool, args, *, cwd, log, what):  # any other failure passes through unchanged
        log.write_text("ERROR: routing failed\n")
        raise ImplError("nextpnr-ecp5 failed: ERROR: routing failed")

    monkeypatch.setattr(nextpnr, "run_tool", other)
    with pytest.raises(ImplError, match="^nextpnr-ecp5 failed: ERROR: routing failed$"):
        nextpnr.run_nextpnr(tmp_path / "top.json", get_target("ecp5"), tmp_path, freq_mhz=100)
