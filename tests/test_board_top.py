"""Board tops: the configs refuse what a board cannot do, the PLL's dividers (from
yowasp-ecppll) give the clock asked for, and the ULX3S top binds the amaranth-boards pins
(oscillator, UART, reset, LEDs) -- the design the bitstream flow places and routes."""

from __future__ import annotations

import pytest

from hwaccel.generators.board import BoardConfig
from hwaccel.generators.board.boards import BOARDS


def test_board_configs_refuse_by_name():
    with pytest.raises(ValueError, match=r"board must be one of 'ulx3s', 'ecpix5', not 'arty'"):
        BoardConfig(board="arty")
    with pytest.raises(ValueError, match=r"preset must be one of .* not 'huge'"):
        BoardConfig(preset="huge")
    with pytest.raises(ValueError, match=r"baud 3000000 is not a divisor of 50.0 MHz within 1 %"):
        BoardConfig(baud=3_000_000)
    cfg = BoardConfig(board="ulx3s", preset="ecp5", freq_mhz=50.0, baud=1_000_000)
    bridge = cfg.bridge()
    assert bridge.divisor == 50 and bridge.accel.slug == "accel_ecp5"
    assert bridge.gap == 4000 * 50   # 4 ms of quiet at 50 MHz ends a frame


def test_the_default_clock_is_the_one_the_boards_build_met():
    from hwaccel.generators.board.config import BOARD_MHZ, DEFAULT_MHZ

    assert BoardConfig(board="ulx3s", preset="tiny").freq_mhz == 30.0
    assert BoardConfig(board="ecpix5", preset="ecp5").freq_mhz == 100.0
    assert BoardConfig(board="ecpix5", preset="tiny").freq_mhz == DEFAULT_MHZ == 50.0
    assert BoardConfig(board="ulx3s", preset="tiny", freq_mhz=25.0).freq_mhz == 25.0
    for (board, slug), mhz in BOARD_MHZ.items():   # each a clock the PLL makes and the UART takes
        assert board in BOARDS and BoardConfig(board=board, preset=slug[6:]).divisor >= 4, mhz


@pytest.mark.parametrize("fin, fout", [(25.0, 50.0), (100.0, 50.0), (25.0, 60.0)])
def test_pll_dividers_make_the_clock(fin, fout):
    from hwaccel.generators.board.pll import pll_params

    p = pll_params(fin, fout)
    params = dict(p.parameters)
    # CLKOP feeds back: f_out = f_in / CLKI_DIV x CLKFB_DIV, and the VCO runs CLKOP_DIV faster
    assert fin / params["CLKI_DIV"] * params["CLKFB_DIV"] == pytest.approx(p.fout_mhz)
    assert p.fout_mhz == pytest.approx(fout)
    vco = p.fout_mhz * params["CLKOP_DIV"]
    assert vco == pytest.approx(p.vco_mhz) and 400 <= vco <= 800
    assert params["FEEDBK_PATH"] == "CLKOP"


def test_every_board_has_the_resources_the_top_uses():
    for board in BOARDS.values():
        platform = board.platform()
        assert platform.dsp_primitive == "MULT18X18D"
        platform.request(board.clock, 0, dir="-")
        platform.request(*board.reset, dir="-")
        uart = platform.request("uart", 0, dir="-")
        assert hasattr(uart, "rx") and hasattr(uart, "tx")
        for i in range(board.leds):
            board.led_port(platform, i)


def test_ulx3s_top_binds_the_boards_pins():
    from hwaccel.generators.board.pll import pll_params
    from hwaccel.generators.board.top import BoardTop

    cfg = BoardConfig(board="ulx3s", preset="tiny")
    top = BoardTop(cfg, pll_params(25.0, cfg.freq_mhz))
    plan = BOARDS["ulx3s"].platform().prepare(top, name="top")
    lpf = plan.files["top.lpf"]
    # pins of the ULX3S's published constraint file (ulx3s_v20.lpf), as amaranth-boards has them
    for port, site in (("clk25_0__io", "G2"), ("uart_0__rx__io", "M1"),
                       ("uart_0__tx__io", "L4"), ("button_fire_0__io", "R1"),
                       ("led_0__io", "B2")):
        assert f'LOCATE COMP "{port}" SITE "{site}";' in lpf
    assert "EHXPLLL" in plan.files["top.il"]


def test_the_bridge_carries_each_regions_words_at_their_width():
    from hwaccel.generators.accel.isa import command_layout

    bridge = BoardConfig(board="ulx3s", preset="ecp5").bridge()
    acc = bridge.accel
    # ecp5: an activation word is 8 lanes of int8, a weight word 8 x 8 bytes, a command
    # 237 bits (three 14-bit activation addresses into 12,288 words, 48-wide maps, a 17-bit
    # AVGPOOL multiplier for windows up to 128 over up to 16 blocks), a register a 48-bit counter
    assert (acc.act_bits, acc.wgt_bits, command_layout(acc).size) == (64, 512, 237)
    assert bridge.region_bytes == (8, 64, 30, 6)
    # the buffer holds max_words of the widest word, with the address
    assert bridge.word_bytes == 64 and bridge.buffer_bytes == 4 + 16 * 64


@pytest.mark.parametrize("fmax,code", [({"clk": 52.3}, 0), ({"clk": 25.1}, 2), ({}, 2)])
def test_a_bitstream_that_misses_its_clock_is_named_and_fails(monkeypatch, capsys, tmp_path,
                                                               fmax, code):
    """``hwaccel board`` writes the bitstream either way, and says when it will not run at
    the PLL's clock (exit 2, the Fmax and the clock on stderr)."""
    import argparse

    from hwaccel.impl import board, board_command

    bit = tmp_path / "top.bit"
    report = {"freq_mhz": 50.0, "fmax_mhz": fmax,
              "timing_met": bool(fmax) and min(fmax.values()) >= 50.0}
    monkeypatch.setattr(board, "board_bitstream", lambda cfg, seed, placer, router: (bit, report))
    args = argparse.Namespace(board="ulx3s", preset="tiny", freq=50.0, baud=1_000_000, seed=1,
                              placer=None, router=None)
    assert board_command.run(args) == code
    err = capsys.readouterr().err
    if code:
        assert "timing not met" in err and "50 MHz" in err and str(bit) in err
        assert ("25.1 MHz" if fmax else "no measured") in err
    else:
        assert err == ""


def test_the_seed_placer_and_synthesis_script_reach_the_tools(monkeypatch, tmp_path):
    """``hwaccel board --placer static`` (the placer of the presets of 128 MACs and more)
    passes nextpnr its placer beside the seed, ``--router`` its router, and Yosys the
    out-of-context flow's mapping of the multiplies; an unknown placer or router is refused
    before any tool runs."""
    from hwaccel.generators.board.boards import Board
    from hwaccel.generators.board.config import BoardConfig
    from hwaccel.impl.board import board_bitstream, synth_script
    from hwaccel.impl.target import ECP5_DSP_FIRST
    from hwaccel.impl.tools import ImplError
    from hwaccel.impl.yosys import LUT_MULTIPLIERS

    opts, scripts = [], []

    class Plan:
        def execute_local(self, folder, env):
            raise RuntimeError("no tools in this test")

    class Platform:
        def prepare(self, top, name, nextpnr_opts, script_after_read):
            opts.append(nextpnr_opts)
            scripts.append(script_after_read)
            top._MustUse__used = True   # as a real prepare's elaboration marks it (no warning)
            return Plan()

    monkeypatch.setattr(Board, "platform", lambda self: Platform())
    cfg = BoardConfig(board="ulx3s", preset="tiny")
    with pytest.raises(ImplError, match="no tools in this test"):
        board_bitstream(cfg, out_dir=tmp_path, seed=3, placer="static")
    assert "--seed 3 " in opts[0] and opts[0].endswith("--placer static")
    with pytest.raises(ImplError, match="no tools in this test"):
        board_bitstream(cfg, out_dir=tmp_path, placer="static", router="router2")
    assert opts[1].endswith("--placer static --router router2")
    # the multiplies mapped as out of context: the small products in LUTs (and under
    # lut_multipliers, every product but the MACs'), before synth_ecp5
    assert scripts[0] == ECP5_DSP_FIRST.format(top=cfg.slug) and "booth" in scripts[0]
    wide = BoardConfig(board="ecpix5", preset="ecp5_128")
    assert synth_script(wide, "t") == (LUT_MULTIPLIERS.format(top="t") + "\n"
                                       + ECP5_DSP_FIRST.format(top="t"))
    with pytest.raises(ValueError, match="placer must be one of heap, static, sa, not 'fast'"):
        board_bitstream(cfg, out_dir=tmp_path, placer="fast")
    with pytest.raises(ValueError, match="router must be one of router1, router2, not 'r3'"):
        board_bitstream(cfg, out_dir=tmp_path, router="r3")
    assert len(opts) == 2
