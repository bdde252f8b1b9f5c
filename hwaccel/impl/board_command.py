"""``hwaccel board``: a bitstream for a real board (the accelerator behind its UART bridge).

``make bitstream BOARD=ulx3s`` runs it. The report (resources, Fmax, PLL, UART) is printed as
JSON; the ``.bit`` is in ``build/board/<board>_<preset>/``. A design that does not meet the
PLL's clock is written all the same (its Fmax is measured either way), named on stderr, and the
command exits 2.
"""

from __future__ import annotations

import json
import sys

HELP = "a bitstream for a board: the accelerator behind a UART bridge (ulx3s, ecpix5)"


def add_arguments(p) -> None:
    from ..generators.board.boards import BOARDS
    from ..generators.board.config import BOARD_MHZ, DEFAULT_MHZ, BoardConfig

    d = BoardConfig()
    p.add_argument("--board", choices=list(BOARDS), default=d.board,
                   help=f"the board (default: {d.board})")
    p.add_argument("--preset", default=d.preset,
                   help=f"accelerator preset (default: {d.preset})")
    p.add_argument("--freq", type=float, default=None,
                   help=f"the accelerator's clock in MHz, made by the PLL (default: the clock "
                        f"this preset's build met on this board, "
                        f"{', '.join(f'{b} {s[6:]} {f:g}' for (b, s), f in BOARD_MHZ.items())}"
                        f"; else {DEFAULT_MHZ:g})")
    p.add_argument("--baud", type=int, default=d.baud,
                   help=f"the UART's baud rate (default: {d.baud})")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default: 1)")
    p.add_argument("--placer", choices=["heap", "static", "sa"], default=None,
                   help="nextpnr's placer (default: its own, heap; static places the "
                        "presets of 128 and more MACs)")
    p.add_argument("--router", choices=["router1", "router2"], default=None,
                   help="nextpnr's router (default: its own, router1)")


def run(args) -> int:
    from ..generators.board.config import BoardConfig
    from .board import board_bitstream

    cfg = BoardConfig(board=args.board, preset=args.preset, freq_mhz=args.freq, baud=args.baud)
    bit, report = board_bitstream(cfg, seed=args.seed, placer=args.placer,
                                  router=args.router)
    print(json.dumps(report, indent=2))
    if report["timing_met"]:
        return 0
    fmax = min(report["fmax_mhz"].values(), default=None)
    print(f"hwaccel board: timing not met: the design places at "
          f"{'no measured' if fmax is None else f'{fmax:g} MHz'} against the PLL's "
          f"{report['freq_mhz']:g} MHz, so {bit} may not work on the board; build it again "
          f"with a lower --freq (the critical path is in {bit.parent}/report.json)",
          file=sys.stderr)
    return 2
