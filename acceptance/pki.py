"""A certificate authority per stack, and one certificate per identity, for mTLS between everything.

    pki = Pki.create(Path("reports/logs/run-1/pki"), ["risk-monitor", "trading-system-engine", "suite", "admin"])
    pki.files("risk-monitor")   # TlsFiles(ca=.../ca.pem, cert=.../risk-monitor.pem, key=.../risk-monitor.key)

An identity is the certificate's one DNS subjectAltName (and its CN): servers present their service
name, callers check it (gRPC's target-name check), and servers authorize callers by it. Keys are
written 0600; nothing here is committed or baked into an image: every stack gets a fresh CA.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ecosystem.security import TlsFiles

VALIDITY = dt.timedelta(days=2)
CA_FILE = "ca.pem"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
    *, ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    """The CA and identity certificates of one stack, as files in `directory`."""

    directory: Path

    @classmethod
    def create(cls, directory: Path, identities: list[str]) -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = _key()
        ca_name = f"stack CA {directory.name}"
        ca_cert = _certificate(ca_name, ca_key, _name(ca_name), ca_key, ca=True)
        (directory / CA_FILE).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        pki = cls(directory)
        for identity in identities:
            key = _key()
            cert = _certificate(identity, key, ca_cert.subject, ca_key, ca=False)
            pki._write(identity, cert, key)
        return pki

    def files(self, identity: str) -> TlsFiles:
        files = TlsFiles(self.directory / CA_FILE, self.directory / f"{identity}.pem",
                         self.directory / f"{identity}.key")
        if not files.cert.exists():
            raise KeyError(f"{self.directory} holds no certificate for identity {identity!r}")
        return files

    def self_signed(self, identity: str) -> TlsFiles:
        """A certificate for `identity` that this stack's CA did not sign (an impostor's), beside the others."""
        key = _key()
        cert = _certificate(identity, key, _name(identity), key, ca=False)
        name = f"self-signed-{identity}"
        self._write(name, cert, key)
        return TlsFiles(self.directory / CA_FILE, self.directory / f"{name}.pem", self.directory / f"{name}.key")

    def _write(self, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        (self.directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = self.directory / f"{name}.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(_pem_key(key))
