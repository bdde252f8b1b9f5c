"""A bitstream for a real board: the accelerator behind its UART bridge, the board's pins.

:func:`board_bitstream` builds :class:`hwaccel.generators.board.top.BoardTop` through the
board's ``amaranth-boards`` platform (which writes the pin constraints, ``.lpf``, from the
board's description) with the YoWASP tools: Yosys ``synth_ecp5`` after the out-of-context flow's
own mapping of the multiplies (:func:`synth_script`), ``nextpnr-ecp5`` (seed 1,
timing allowed to fail so that Fmax is measured either way) and ``ecppack``. Everything lands in
``build/board/<board>_<preset>/``: the platform's files, the logs, ``<name>.bit`` and
``report.json`` (resources, Fmax per clock, the PLL and UART settings, the build time). Load the
``.bit`` with ``openFPGALoader -b ulx3s build/board/.../<name>.bit`` (or ``-b ecpix5``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..generators.board.boards import BOARDS
from ..generators.board.config import BoardConfig
from ..sim.runner import build_root
from .flow import PLACERS, ROUTERS
from .nextpnr import critical_path
from .target import ECP5_DSP_FIRST
from .tools import ImplError, find_tool
from .yosys import LUT_MULTIPLIERS

__all__ = ["board_bitstream", "board_folder", "synth_script"]

#: nextpnr utilisation entries -> report keys (as :mod:`.target`'s ECP5 target counts them)
_RESOURCES = {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD"}


def board_folder(config: BoardConfig, out_dir: Path | str | None = None) -> Path:
    base = Path(out_dir) if out_dir is not None else build_root() / "board"
    return base / config.slug


def board_bitstream(config: BoardConfig, *, out_dir: Path | str | None = None,
                    seed: int = 1, placer: str | None = None,
                    router: str | None = None) -> tuple[Path, dict]:
    """Build ``config``'s bitstream; returns the ``.bit`` path and the report (also written
    as ``report.json`` beside it, only when the whole flow succeeded). ``placer`` and
    ``router``: nextpnr's, one of :data:`~.flow.PLACERS` and :data:`~.flow.ROUTERS` (default:
    nextpnr's own, ``heap`` and ``router1``).

    Raises
    ------
    MissingToolError
        A tool or ``amaranth-boards`` is not installed (the message names the package).
    ImplError
        Synthesis, place and route or packing failed (the log's error lines and path).
    """
    from ..generators.board.pll import pll_params
    from ..generators.board.top import BoardTop

    if placer is not None and placer not in PLACERS:
        raise ValueError(f"placer must be one of {', '.join(PLACERS)}, not {placer!r}")
    if router is not None and router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    board = BOARDS[config.board]
    folder = board_folder(config, out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = config.slug
    report_path, bit = folder / "report.json", folder / f"{name}.bit"
    # a failed run leaves none of an earlier run's outputs to be mistaken for its own
    for stale in (report_path, bit, *(folder / f"{name}{s}" for s in
                                      (".config", ".svf", ".tim", "_pnr.json", ".json"))):
        stale.unlink(missing_ok=True)
    start = time.monotonic()
    pll = pll_params(board.clock_mhz, config.freq_mhz)
    top = BoardTop(config, pll)
    platform = board.platform()
    plan = platform.prepare(top, name=name,
                            nextpnr_opts=f"--seed {seed} --timing-allow-fail "
                                         f"--report {name}_pnr.json"
                                         + (f" --placer {placer}" if placer else "")
                                         + (f" --router {router}" if router else ""),
                            script_after_read=synth_script(config, name))
    env = {**os.environ, "YOSYS": find_tool("yosys"), "NEXTPNR_ECP5": find_tool("nextpnr-ecp5"),
           "ECPPACK": find_tool("ecppack")}
    try:
        plan.execute_local(str(folder), env=env)
    except Exception as exc:   # amaranth raises CalledProcessError from the build script
        log = folder / f"{name}.tim"
        lines = [ln.strip() for ln in log.read_text().splitlines() if "ERROR" in ln] \
            if log.exists() else []
        raise ImplError(f"bitstream of {name} failed: {'; '.join(lines[:3]) or exc} "
                        f"[logs: {folder}]") from exc
    if not bit.exists():
        raise ImplError(f"bitstream of {name}: the flow ended without {bit.name} [{folder}]")
    pnr = json.loads((folder / f"{name}_pnr.json").read_text())
    util = pnr.get("utilization", {})
    fmax = {clock: round(v["achieved"], 2) for clock, v in pnr.get("fmax", {}).items()}
    report = {
        "board": config.board, "device": board.device, "preset": config.accel.slug,
        "bitstream": str(bit), "freq_mhz": pll.fout_mhz, "vco_mhz": pll.vco_mhz,
        "pll": dict(pll.parameters), "baud": config.baud, "divisor": top.bridge.divisor,
        "max_words": config.max_words, "gap_cycles": top.bridge.gap,
        **{k: util.get(cell, {}).get("used") for k, cell in _RESOURCES.items()},
        "available": {k: util.get(cell, {}).get("available") for k, cell in _RESOURCES.items()},
        "fmax_mhz": fmax,
        "timing_met": bool(fmax) and min(fmax.values()) >= pll.fout_mhz,
        "critical_path": _critical(pnr),
        "seed": seed, "placer": placer or "heap", "router": router or "router1",
        "seconds": round(time.monotonic() - start, 1),
    }
    tmp = report_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(report_path)
    return bit, report


def synth_script(config: BoardConfig, top: str) -> str:
    """The Yosys commands the board flow runs before ``synth_ecp5``: the out-of-context flow's
    own (:data:`~.target.ECP5_DSP_FIRST`: the small products in LUT logic, each multiply on a
    block of its own; and, for a preset with ``lut_multipliers``, every product but the MACs'
    in LUT logic, :data:`~.yosys.LUT_MULTIPLIERS`), so a board's netlist maps its multiplies
    as the placed presets' did: ``ecp5_128`` and ``ecp5_144`` need all 156 MULT18X18D for
    their products, and ``synth_ecp5`` alone put every multiply on a block (198 on
    ``ecp5_128``)."""
    lut = LUT_MULTIPLIERS.format(top=top) + "\n" if config.accel.lut_multipliers else ""
    return lut + ECP5_DSP_FIRST.format(top=top)


def _critical(pnr: dict) -> dict | None:
    """The worst clock-to-clock path of the accelerator's clock domain."""
    for path in pnr.get("critical_paths", []):
        if path.get("from", "").startswith("posedge") and path.get("from") == path.get("to"):
            return critical_path(pnr, path["from"].split(" ", 1)[1])
    return None
