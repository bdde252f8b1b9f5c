"""``fpga``: the lowered programs on a board, over its USB serial port and the UART bridge.

The same protocol as ``rtl`` on the simulated host port -- soft reset, load, start, wait for
STATUS.busy to drop, check STATUS, read the ``cycles`` counter, read back only the outputs --
made of :mod:`hwaccel.generators.board.framing` requests by
:class:`hwaccel.runtime.serial_link.LinkHost`. The board must run the bitstream of the preset
the model was compiled for (``make bitstream BOARD=ulx3s PRESET=...``): INFO reports its config
id, protocol version and each region's word width, and another bitstream is refused before
anything is written. Every word travels at its region's width (an activation word in its own
bytes), so the link time is the images' and outputs' bytes, not the host port's widest words'.

Cycles are the device's own counter (per sample, as ``rtl`` reports them); the run's wall time
includes every transfer over the link, and the notes give the link's share and the bytes moved.
Without a board (no ``--port``, or a port that does not open or answer) :meth:`check` raises
:class:`BackendUnavailable` with one line that starts ``fpga: no device``.

Options: ``port`` (``/dev/ttyUSB0``), ``baud`` (the bitstream's, default 1,000,000),
``timeout_s`` (per program), or ``link`` (an open byte link: the Verilator test's
:class:`hwaccel.runtime.serial_sim.SimSerial`).
"""

from __future__ import annotations

from . import BackendRun, BackendUnavailable
from .programs import ProgramBackend

__all__ = ["FpgaBackend"]


class FpgaBackend(ProgramBackend):
    hardware = True
    #: one board, one serial port: never sharded over workers
    shardable = False

    def __init__(self, *, name: str, port: str | None = None, baud: int = 1_000_000,
                 timeout_s: float = 60.0, link=None):
        super().__init__(name=name)
        self.port, self.baud, self.timeout_s = port, baud, timeout_s
        self.link = link
        self.host = None
        self._io = (0, 0, 0.0)

    def _open_link(self):
        from ..serial_link import LinkError, SerialLink

        if self.link is not None:
            return self.link
        if not self.port:
            raise BackendUnavailable(f"{self.name}: no device (give the board's serial port: "
                                     f"--port /dev/ttyUSB0)")
        try:
            return SerialLink(self.port, self.baud, timeout_s=2.0)
        except LinkError as exc:
            raise BackendUnavailable(f"{self.name}: no device at {self.port} ({exc})") from exc

    def check(self) -> str:
        link = self._open_link()
        if link is not self.link:
            link.close()
        where = self.port or "a simulated serial line"
        return f"board on {where} ({self.baud:,} baud)" if self.port else where

    def open(self, compiled) -> None:
        from ..serial_link import LinkError, LinkHost, LinkMismatch

        link = self._open_link()
        try:
            self.host = LinkHost(link, compiled.config)
        except LinkError as exc:
            if link is not self.link:
                link.close()
            if isinstance(exc, LinkMismatch):   # a board that answers, with another bitstream
                raise
            raise BackendUnavailable(f"{self.name}: no device answering on "
                                     f"{self.port or 'the link'} ({exc})") from exc

    def close(self) -> None:
        if self.host is not None:
            h = self.host
            self._io = (h.bytes_out, h.bytes_in, h.link_seconds)
            if h.link is not self.link:
                h.close()
            self.host = None

    def execute(self, compiled, lowered, index: int):
        """As ``rtl``'s (:meth:`~.programs.ProgramBackend.run_on_host`); the cycles a host
        port would take, the UART's time being wall time."""
        from ..serial_link import LinkTimeout

        def wait(where):
            try:
                return self.host.run(timeout_s=self.timeout_s)
            except LinkTimeout as exc:
                raise LinkTimeout(f"{self.name}: {where}: {exc}") from exc

        return self.run_on_host(compiled, lowered, index, wait)

    def result(self, device, ints, floats, cycles, seconds, size) -> BackendRun:
        run = super().result(device, ints, floats, cycles, seconds, size)
        out, inp, link_s = self._io
        notes = (*run.notes, f"wall time includes the link: {link_s:.3f} s of {seconds:.3f} s "
                             f"in {out:,} bytes out and {inp:,} in")
        return BackendRun(run.backend, run.device, run.logits, run.seconds, run.latency_s,
                          run.int_logits, run.cycles_per_sample, notes)
