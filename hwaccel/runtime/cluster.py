"""The Dask cluster that independent tasks run on: sweep points, compare's sample shards, the
data-parallel instances of ``hwaccel parallel``.

:func:`connect` opens a client on a ``LocalCluster`` of this machine (the default: one thread a
worker, since a synthesis run or a simulation keeps a core busy on its own) or on a running
cluster given its scheduler address (``tcp://host:8786``), whose workers need hwaccel installed.
A local cluster listens on the loopback interface only, its dashboard included, so nothing on
the network can reach the workers.

TLS (``--tls``, ``--tls-ca/--tls-cert/--tls-key`` on ``sweep``, ``compare`` and ``parallel``):
with ``tls=True`` the LocalCluster's scheduler, workers and client talk over ``tls://`` with a
self-signed certificate made in memory for this run (``distributed.security.Security.temporary``,
which needs ``cryptography``), so another process of this machine cannot join or submit work
either. A :class:`TLSFiles` of PEM files secures the connection to a running scheduler at
``tls://host:port`` (or a LocalCluster, every role using the one certificate); each file is
checked first and a bad one is refused in one line naming it. The dashboard (HTTP, loopback)
is not covered. The commands set the choice once with :func:`using_tls`; :func:`connect` takes it
from there unless given ``tls`` itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

__all__ = ["connect", "client_for", "close", "worker_count", "LOOPBACK", "PRELOAD", "TLSFiles",
           "using_tls", "security_for", "add_tls_arguments", "tls_from_args"]

LOOPBACK = "127.0.0.1"

#: What hwaccel's tasks import on a worker: golden's interpreter, rtl's harness, the compiled
#: model (torch) and both program backends. A LocalCluster's fork server imports them once
#: (:func:`connect`); :func:`hwaccel.runtime.shards.warm` imports them on any other worker.
PRELOAD = ("hwaccel.generators.accel.model", "hwaccel.sim.host", "hwaccel.runtime.runnable",
           "hwaccel.runtime.backends.programs", "hwaccel.runtime.backends.rtl")

_TLS: ContextVar = ContextVar("hwaccel_cluster_tls", default=None)


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for TLS: ``ca`` the CA certificate(s) the cluster's certificates are signed
    by, ``cert`` this side's certificate, ``key`` its unencrypted private key (``None``: the key
    is in ``cert``)."""
    ca: str
    cert: str
    key: str | None = None

    def security(self):
        """The ``distributed.security.Security`` of these files, after checking each of them."""
        from distributed.security import Security

        cert, key = self.check()
        return Security(require_encryption=True, tls_ca_file=self.ca,
                        **{f"tls_{role}_{part}": path for role in ("client", "scheduler", "worker")
                           for part, path in (("cert", self.cert), ("key", key))})

    def check(self) -> tuple[str, str]:
        """``(cert, key)`` paths once every file reads as what it should be; ``ValueError``
        naming the file (and its option) otherwise."""
        import ssl

        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        ca = _read("--tls-ca", self.ca)
        try:
            x509.load_pem_x509_certificates(ca)
        except ValueError:
            raise ValueError(f"--tls-ca {self.ca}: not a PEM certificate") from None
        cert_pem = _read("--tls-cert", self.cert)
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            raise ValueError(f"--tls-cert {self.cert}: not a PEM certificate") from None
        flag, key_path = ("--tls-key", self.key) if self.key else ("--tls-cert", self.cert)
        key_pem = _read(flag, key_path) if self.key else cert_pem
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except TypeError:
            raise ValueError(f"{flag} {key_path}: the private key is encrypted; give it "
                             f"unencrypted (readable by you only)") from None
        except ValueError:
            what = "no PEM private key" if self.key else "no private key: give --tls-key"
            raise ValueError(f"{flag} {key_path}: {what}") from None
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        if (cert.public_key().public_bytes(serialization.Encoding.PEM, public)
                != key.public_key().public_bytes(serialization.Encoding.PEM, public)):
            raise ValueError(f"{flag} {key_path}: the key does not match the certificate in "
                             f"--tls-cert {self.cert}")
        try:
            ssl.create_default_context(cafile=self.ca).load_cert_chain(self.cert, key_path)
        except ssl.SSLError as exc:
            raise ValueError(f"--tls-cert {self.cert}: refused by TLS ({exc.reason})") from None
        return self.cert, key_path


def _read(flag: str, path: str) -> bytes:
    if not Path(path).is_file():
        raise ValueError(f"{flag} {path}: no such file")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{flag} {path}: cannot be read ({exc.strerror})") from None


def _check_address(tls, scheduler: str | None) -> None:
    secure = scheduler.startswith("tls://") if scheduler else None
    if tls is None:
        if secure:
            raise ValueError(f"the scheduler {scheduler} speaks TLS: give --tls-ca, --tls-cert "
                             f"and --tls-key")
    elif scheduler and not secure:
        raise ValueError(f"TLS needs a tls://host:port scheduler address, not {scheduler!r}")
    elif tls is True and scheduler:
        raise ValueError("--tls alone makes a self-signed certificate for a LocalCluster; for "
                         f"the running scheduler {scheduler} give --tls-ca, --tls-cert and "
                         "--tls-key")


def security_for(tls, scheduler: str | None = None):
    """The ``Security`` for ``tls`` (``None``: plain TCP; ``True``: a self-signed set in memory,
    for a LocalCluster only; a :class:`TLSFiles`) with the cluster at ``scheduler`` (``None``:
    a LocalCluster), or ``None``; ``ValueError`` when the two do not go together."""
    if tls is not None and tls is not True and not isinstance(tls, TLSFiles):
        raise TypeError(f"tls must be None, True or TLSFiles, not {tls!r}")
    _check_address(tls, scheduler)
    if tls is None:
        return None
    if isinstance(tls, TLSFiles):
        return tls.security()
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError:
        raise RuntimeError("--tls needs the cryptography package (pip install "
                           "'hwaccel[dse]')") from None


@contextmanager
def using_tls(tls):
    """Within the block, :func:`connect` uses ``tls`` when not given one (see
    :func:`security_for`)."""
    token = _TLS.set(tls)
    try:
        yield
    finally:
        _TLS.reset(token)


def connect(scheduler: str | None = None, workers: int | None = None, *,
            processes: bool = True, tls=None):
    """``(client, cluster)``: a client of the cluster at ``scheduler``, or of a new
    ``LocalCluster`` with ``workers`` workers (default: one a core with ``processes``, else one)
    bound to loopback; ``cluster`` is ``None`` for a running scheduler. ``tls``: see
    :func:`security_for` (default: the one of :func:`using_tls`, else none). A LocalCluster's
    worker processes are forks of a server that has imported :data:`PRELOAD`
    (:func:`_forkserver`). Close both when done (:func:`client_for` does)."""
    import dask
    from dask.distributed import Client, LocalCluster

    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    security = security_for(_TLS.get() if tls is None else tls, scheduler)
    if scheduler:
        return (Client(scheduler, security=security) if security else Client(scheduler)), None
    n = workers if workers else (None if processes else 1)
    kwargs = {}
    if security is not None:     # threads too then talk over TLS on loopback, not in-process
        kwargs = {"host": LOOPBACK, "security": security, "protocol": "tls://"}
    elif processes:              # threads alone talk in-process, not over TCP
        kwargs = {"host": LOOPBACK}
    method = _forkserver() if processes else None
    with dask.config.set({"distributed.worker.multiprocessing-method": method} if method else {}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                               dashboard_address=f"{LOOPBACK}:0", **kwargs)  # any free port
    try:
        return Client(cluster, security=security) if security else Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def _forkserver() -> str | None:
    """``"forkserver"`` where this platform has it, with :data:`PRELOAD` (and distributed)
    imported once in the fork server, so worker processes start as forks of it: on two workers
    this cut the machine's CPU time of starting them and importing what a task needs from 7.3 s
    to 4.1 s, and a fork closes in milliseconds where a spawned worker took about a second to
    exit. The fork server is this process's from its first LocalCluster on; ``None`` (spawn,
    distributed's default) where there is none."""
    import multiprocessing

    import dask
    from distributed.utils import get_mp_context

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        context = get_mp_context()       # distributed sets its own preload list, once
    # Read when the server starts; the last makes the server's exit skip the interpreter's
    # teardown, which held the command's stdout about a second after it exited.
    context.set_forkserver_preload(["distributed", *PRELOAD, "hwaccel.runtime.forkserver_exit"])
    return "forkserver"


@contextmanager
def client_for(scheduler: str | None = None, workers: int | None = None, *,
               processes: bool = True, tls=None):
    """:func:`connect` as a context manager that closes the client and any cluster it made."""
    client, cluster = connect(scheduler, workers, processes=processes, tls=tls)
    try:
        yield client
    finally:
        close(client, cluster)


def close(client, cluster) -> None:
    """Close ``client`` and, if :func:`connect` made one, its ``cluster``."""
    client.close()
    if cluster is not None:
        cluster.close()


def worker_count(client) -> int:
    """The workers the client's scheduler has now."""
    return len(client.scheduler_info(n_workers=-1)["workers"])


def add_tls_arguments(p) -> None:
    """``--tls``, ``--tls-ca``, ``--tls-cert`` and ``--tls-key`` on a command's parser."""
    g = p.add_argument_group("TLS for the Dask cluster (see hwaccel.runtime.cluster)")
    g.add_argument("--tls", action="store_true",
                   help="the LocalCluster's scheduler, workers and this client talk over TLS "
                        "(tls://127.0.0.1) with a self-signed certificate made in memory for "
                        "this run: nothing without it can connect (needs cryptography)")
    g.add_argument("--tls-ca", metavar="FILE",
                   help="with --scheduler tls://host:port: PEM CA certificate(s) that signed "
                        "the cluster's certificates (without --scheduler: the LocalCluster "
                        "uses these files instead of a self-signed set)")
    g.add_argument("--tls-cert", metavar="FILE",
                   help="with --tls-ca: this client's PEM certificate (it may hold the key too)")
    g.add_argument("--tls-key", metavar="FILE",
                   help="with --tls-ca: the certificate's unencrypted PEM private key")


def tls_from_args(args):
    """The ``tls`` of a command's parsed options (``None``, ``True`` or :class:`TLSFiles`),
    its files and its fit with ``--scheduler`` checked; ``ValueError`` naming the problem."""
    files = {"--tls-ca": args.tls_ca, "--tls-cert": args.tls_cert, "--tls-key": args.tls_key}
    if any(files.values()):
        missing = [flag for flag in ("--tls-ca", "--tls-cert") if not files[flag]]
        if missing:
            raise ValueError(f"TLS files need {' and '.join(missing)} too")
        tls = TLSFiles(args.tls_ca, args.tls_cert, args.tls_key)
        tls.check()
    else:
        tls = True if args.tls else None
    _check_address(tls, getattr(args, "scheduler", None))
    return tls
