"""Who may call what (ecosystem/security.py), and a stack's certificates (acceptance/pki.py)."""

from __future__ import annotations

from pathlib import Path

import grpc
from cryptography import x509

from acceptance.pki import Pki
from acceptance.redis_acl import redact
from ecosystem.security import ADMIN, SUITE, denial, impersonation

SET = "/ecosystem.config.v1.ConfigurationService/SetConfiguration"
INJECT = "/ecosystem.coordinator.v1.TestCoordinatorService/InjectChaos"


def test_configuration_writes_only_by_admin_and_chaos_only_by_suite_or_coordinator() -> None:
    assert denial(SET, ADMIN) is None
    assert denial(SET, "risk-monitor") == (
        grpc.StatusCode.PERMISSION_DENIED,
        f"identity 'risk-monitor' may not call {SET} (allowed: admin)",
    )
    assert denial(INJECT, SUITE) is None and denial(INJECT, "test-coordinator") is None
    assert denial(INJECT, "trading-system-engine")[0] == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[index]


def test_reads_are_open_to_any_identity_and_closed_to_anonymous_callers() -> None:
    read = "/ecosystem.config.v1.ConfigurationService/GetConfiguration"
    assert denial(read, "risk-monitor") is None
    assert denial(read, "")[0] == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[index]


def test_each_identity_certificate_names_it_and_comes_from_the_stacks_ca(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path, ["risk-monitor", SUITE])
    files = pki.files("risk-monitor")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert names == ["risk-monitor"]
    assert cert.issuer == ca.subject
    assert files.key.stat().st_mode & 0o777 == 0o600
    impostor = x509.load_pem_x509_certificate(pki.self_signed("risk-monitor").cert.read_bytes())
    assert impostor.issuer != ca.subject


class _Peer:
    def __init__(self, identity: str) -> None:
        self._identity = identity

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_subject_alternative_name": [self._identity.encode()]} if self._identity else {}


def test_a_service_acts_only_for_itself_unless_it_is_a_controller() -> None:
    assert impersonation(_Peer("risk-monitor"), "risk-monitor", "report chaos events") is None  # type: ignore[arg-type]
    assert impersonation(_Peer(SUITE), "risk-monitor", "report chaos events") is None  # type: ignore[arg-type]
    assert impersonation(_Peer("trading-system-engine"), "risk-monitor", "report chaos events") == (  # type: ignore[arg-type]
        "identity 'trading-system-engine' may not report chaos events for 'risk-monitor'"
    )


def test_redis_passwords_never_reach_a_message() -> None:
    assert redact("registered in redis://suite:s3cr3t@127.0.0.1:6379/0: none") == (
        "registered in redis://suite:***@127.0.0.1:6379/0: none"
    )
