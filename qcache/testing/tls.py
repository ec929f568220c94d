"""Throwaway certificates for TLS test servers: one CA, a server and a client certificate.

Generated per server in its temporary directory, so no key material is ever
committed or shared between runs. EC P-256 keys keep generation instant.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qcache.testing.endpoint import TLSFiles

#: Long enough for a long benchmark or notebook session, short enough to be useless if leaked.
_VALIDITY = datetime.timedelta(days=2)


def generate_tls_files(directory: Path, *, hostname: str = "127.0.0.1") -> tuple[TLSFiles, TLSFiles]:
    """Write a CA, a server and a client certificate into ``directory``.

    Returns ``(server, client)``; both carry the CA certificate, so each side
    can verify the other. The server certificate is valid for ``hostname``
    plus ``localhost`` and ``127.0.0.1``, so hostname checking stays on.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("qcache throwaway test CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    server_cert, server_key = _leaf(
        directory, "server", ca_cert, ca_key, now, _san(hostname), ExtendedKeyUsageOID.SERVER_AUTH
    )
    client_cert, client_key = _leaf(
        directory, "client", ca_cert, ca_key, now, None, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return (
        TLSFiles(ca_certs=ca_path, certfile=server_cert, keyfile=server_key),
        TLSFiles(ca_certs=ca_path, certfile=client_cert, keyfile=client_key),
    )


def _leaf(
    directory: Path,
    role: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    san: x509.SubjectAlternativeName | None,
    usage: x509.ObjectIdentifier,
) -> tuple[Path, Path]:
    """Issue one certificate signed by the CA and write it with its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(f"qcache test {role}"), ca_cert.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path = directory / f"{role}.crt"
    key_path = directory / f"{role}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return cert_path, key_path


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    """A builder with the fields every certificate here shares."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Back-dated a little so a clock that is slightly behind still accepts it.
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _name(common_name: str) -> x509.Name:
    """An X.509 name holding only a common name."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hostname: str) -> x509.SubjectAlternativeName:
    """Subject alternative names for the server: the given host, localhost and 127.0.0.1."""
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        if hostname != "localhost":
            names.append(x509.DNSName(hostname))
    else:
        if str(ip) != "127.0.0.1":
            names.append(x509.IPAddress(ip))
    return x509.SubjectAlternativeName(names)


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
