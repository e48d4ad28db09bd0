"""TLS material of a queue: its own CA and the certificates it signs.

Every queue has a CA of its own, so a certificate of one queue is worthless
on another.  Organizer queues keep theirs (`hub_extension.queues`); the
default queue gets a new one each time the dispatcher starts
(`write_ephemeral`), whose key is never written anywhere.  The role of a
certificate (scheduler, client, worker) is written in its organizational
unit; the queue's scheduler reads it on every connection and gives worker
certificates only the operations a worker needs (see
`hub_extension.queue_scheduler`), and `compete worker` serves the scheduler's
certificate only (`dask_workers.queue_guard` reads the role).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The roles, and reading one from a peer's certificate, are worker-side
# (`compete worker` reads them without cryptography); importable from here as before.
from dask_workers.queue_guard import ROLES

VALID_DAYS = 3650


@dataclass(frozen=True)
class KeyPair:
    cert_pem: str
    key_pem: str


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jupyter-compete"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def make_ca(queue: str) -> KeyPair:
    key = _key()
    name = _name(f"queue {queue} CA", "ca")
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def issue(ca: KeyPair, queue: str, role: str, hosts: tuple[str, ...] = ()) -> KeyPair:
    """A certificate of `role` for `queue`, signed by the queue's CA."""
    if role not in ROLES:
        raise ValueError(f"unknown certificate role {role!r}; expected one of {', '.join(ROLES)}")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca.key_pem.encode(), password=None)
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{queue} {role}", role))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(_cert_pem(cert), _key_pem(key))


def fingerprint(cert_pem: str) -> str:
    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class RoleFiles:
    """Where the certificate of one role, its key and the CA that signed it are."""

    ca: Path
    cert: Path
    key: Path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (created 0600, never through a link)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def write_ephemeral(folder: Path, queue: str, hosts: tuple[str, ...] = ()) -> dict[str, RoleFiles]:
    """A new CA and one certificate per role, written to `folder` (made 0700 here, it must not exist).

    The CA's key signs the three certificates and is then dropped: no other
    certificate of this CA can ever be made.  Returns the files of each role.
    """
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)  # whatever the umask
    ca = make_ca(queue)
    write_private(folder / "ca.pem", ca.cert_pem)
    files = {}
    for role in ROLES:
        pair = issue(ca, queue, role, hosts if role == "scheduler" else ())
        write_private(folder / f"{role}.pem", pair.cert_pem)
        write_private(folder / f"{role}.key", pair.key_pem)
        files[role] = RoleFiles(folder / "ca.pem", folder / f"{role}.pem", folder / f"{role}.key")
    return files
