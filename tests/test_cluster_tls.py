"""TLS on the Dask cluster (hwaccel.runtime.cluster): a LocalCluster with ``tls=True`` listens on
``tls://127.0.0.1`` only, runs tasks with the same results as without TLS, and refuses a client
without its certificate; PEM files secure a running scheduler; a bad file is refused in one line
naming it, by the function and by the commands."""

from __future__ import annotations

import asyncio
import datetime

import numpy as np
import pytest

pytest.importorskip("distributed")
cryptography = pytest.importorskip("cryptography")

from hwaccel.cli import main  # noqa: E402
from hwaccel.numerics import core  # noqa: E402
from hwaccel.runtime.cluster import (  # noqa: E402
    LOOPBACK,
    TLSFiles,
    client_for,
    connect,
    security_for,
    using_tls,
    worker_count,
)

ACC = np.arange(-4000, 4000, 37, dtype=np.int64)


def _requantize(acc):
    return core.requantize(acc, 1_234_567, 31)


@pytest.fixture(scope="module")
def tls_cluster():
    """A one-process-worker LocalCluster on TLS, with its client."""
    client, cluster = connect(workers=1, tls=True)
    yield client, cluster
    client.close()
    cluster.close()


def test_local_cluster_talks_tls_on_loopback(tls_cluster):
    client, cluster = tls_cluster
    assert cluster.scheduler_address.startswith(f"tls://{LOOPBACK}:")
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    assert len(workers) == 1 and workers[0].startswith(f"tls://{LOOPBACK}:")
    assert client.security.require_encryption
    got = client.submit(_requantize, ACC, pure=False).result()
    with client_for(workers=1, processes=False) as plain:   # the same task without TLS
        assert worker_count(plain) == 1
        want = plain.submit(_requantize, ACC, pure=False).result()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, _requantize(ACC))


def _handshake(address, security=None):
    """Open and close one comm to ``address`` (the handshake a client starts with), on an event
    loop of this call's own: a refused handshake raises here, in milliseconds, with no client's
    loop thread to start (a loaded machine once kept one from starting in its 10 s)."""
    from distributed.comm import connect as comm_connect

    args = security.get_connection_args("client") if security is not None else {}

    async def talk():
        comm = await comm_connect(address, timeout="3s", **args)
        await comm.close()

    asyncio.run(talk())


def test_no_client_without_the_certificate(tls_cluster):
    from distributed.comm.core import FatalCommClosedError
    from distributed.security import Security

    client, cluster = tls_cluster
    address = cluster.scheduler_address
    _handshake(address, client.security)      # the cluster's own certificate: let in
    with pytest.raises(OSError):              # plain TCP to the TLS port: the handshake fails
        _handshake(address.replace("tls://", "tcp://"))
    with pytest.raises(TypeError, match="ssl_context"):   # tls:// with no certificate
        _handshake(address)
    with pytest.raises(FatalCommClosedError, match="certificate"):  # another self-signed one
        _handshake(address, Security.temporary())


def _pem_set(tmp_path, name="cluster"):
    """A CA and a certificate it signed (PEM files in ``tmp_path``): ``(ca, cert, key)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def named(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = named(f"{name}-ca")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(named(name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    paths = [tmp_path / f"{name}-{part}.pem" for part in ("ca", "cert", "key")]
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


def test_running_scheduler_with_pem_files(tmp_path):
    files = TLSFiles(*_pem_set(tmp_path))
    with client_for(workers=1, processes=False, tls=files) as server:   # the "running" cluster
        address = server.scheduler.address
        assert address.startswith(f"tls://{LOOPBACK}:")
        with using_tls(files):                     # as the commands set it
            with client_for(address) as client:
                assert client.submit(_requantize, ACC, pure=False).result().tolist() \
                    == _requantize(ACC).tolist()


def test_bad_files_named_in_one_line(tmp_path):
    ca, cert, key = _pem_set(tmp_path)
    _, other_cert, other_key = _pem_set(tmp_path, "other")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = str(tmp_path / "nowhere.pem")
    cases = [
        (TLSFiles(missing, cert, key), f"--tls-ca {missing}: no such file"),
        (TLSFiles(str(junk), cert, key), f"--tls-ca {junk}: not a PEM certificate"),
        (TLSFiles(ca, str(junk), key), f"--tls-cert {junk}: not a PEM certificate"),
        (TLSFiles(ca, cert, str(junk)), f"--tls-key {junk}: no PEM private key"),
        (TLSFiles(ca, cert), f"--tls-cert {cert}: no private key: give --tls-key"),
        (TLSFiles(ca, cert, other_key), f"--tls-key {other_key}: the key does not match"),
        (TLSFiles(ca, other_cert, key), f"--tls-key {key}: the key does not match"),
    ]
    for files, message in cases:
        with pytest.raises(ValueError) as err:
            security_for(files)
        assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="speaks TLS: give --tls-ca"):
        security_for(None, "tls://127.0.0.1:8786")
    with pytest.raises(ValueError, match="tls://host:port"):
        security_for(TLSFiles(ca, cert, key), "tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="--tls alone"):
        security_for(True, "tls://127.0.0.1:8786")


@pytest.mark.parametrize("command", [
    ["sweep", "--rows", "2", "--no-synth"],
    ["compare", "--model", "cnn", "--workers", "1"],
    ["parallel", "--model", "cnn"],
])
def test_commands_refuse_a_bad_file_before_work(command, tmp_path, capsys):
    ca, cert, key = _pem_set(tmp_path)
    missing = str(tmp_path / "nowhere-key.pem")
    assert main([*command, "--tls-ca", ca, "--tls-cert", cert, "--tls-key", missing]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"hwaccel: error: --tls-key {missing}: no such file"
    assert main([*command, "--tls", "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert "TLS needs a tls://host:port" in capsys.readouterr().err
