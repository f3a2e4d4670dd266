"""Transport security and authorization: mTLS identities, the caller's check of whom it reached, and who may
call which method.

An identity is the one DNS subjectAltName of a certificate issued by the stack's CA: each service's
own name, `suite` (the acceptance suite) and `admin` (configuration writes). In `secure` mode every
server requires a client certificate from the CA, every caller checks the server's identity against
the service it resolved (gRPC's target-name check: a registry entry pointing elsewhere cannot
complete a handshake), and every method is authorized by the caller's identity (METHOD_POLICY).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from ecosystem.errors import EcosystemError

SECURE = "secure"
INSECURE = "insecure"
MODES = (SECURE, INSECURE)
SUITE = "suite"
ADMIN = "admin"

_CONFIG = "/ecosystem.config.v1.ConfigurationService/"
_COORDINATOR = "/ecosystem.coordinator.v1.TestCoordinatorService/"
CONTROLLERS = frozenset({SUITE, "test-coordinator"})
# Methods only some identities may call; every other method is open to any identity the CA vouches for.
METHOD_POLICY: Mapping[str, frozenset[str]] = {
    _CONFIG + "SetConfiguration": frozenset({ADMIN}),
    _COORDINATOR + "InjectChaos": CONTROLLERS,
    _COORDINATOR + "EndChaosEvent": CONTROLLERS,
    _COORDINATOR + "StartScenario": CONTROLLERS,
    _COORDINATOR + "CompleteScenario": CONTROLLERS,
    _COORDINATOR + "RecordOutcome": CONTROLLERS | {"trading-system-engine"},
}


class SecurityError(ValueError, EcosystemError):
    """Security settings that cannot work: names the setting and what is missing."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one identity: the CA that issued every certificate of the stack, its certificate, its key."""

    ca: Path
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        try:
            return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()
        except OSError as exc:
            raise SecurityError(f"TLS file {exc.filename} cannot be read: {exc.strerror}") from None

    def server_credentials(self) -> grpc.ServerCredentials:
        """A server that presents this identity and requires a client certificate from the same CA."""
        ca, cert, key = self.read()
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """A caller that presents this identity and trusts only servers the same CA vouches for."""
        ca, cert, key = self.read()
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def expect_identity(identity: str) -> tuple[tuple[str, str], ...]:
    """Channel options that make the TLS handshake fail unless the server's certificate names `identity`."""
    return (("grpc.ssl_target_name_override", identity),)


def peer_identity(context: grpc.aio.ServicerContext) -> str:
    """The caller's identity (its certificate's DNS subjectAltName), "" on a plaintext or anonymous call."""
    names = (context.auth_context() or {}).get("x509_subject_alternative_name") or ()
    first = next(iter(names), None)
    return first.decode() if first is not None else ""


def impersonation(context: grpc.aio.ServicerContext, service: str, what: str) -> str | None:
    """Why the caller may not act for `service` (report its faults, read its control events, record its
    outcomes), or None: only the service itself or a controller may. Plaintext calls carry no identity."""
    identity = peer_identity(context)
    if not identity or identity == service or identity in CONTROLLERS:
        return None
    return f"identity {identity!r} may not {what} for {service!r}"


def denial(method: str, identity: str) -> tuple[grpc.StatusCode, str] | None:
    """Why `identity` may not call `method` (a status and a message naming both), or None when it may."""
    if not identity:
        return grpc.StatusCode.UNAUTHENTICATED, f"{method} needs a client certificate naming an identity"
    allowed = METHOD_POLICY.get(method)
    if allowed is not None and identity not in allowed:
        return (
            grpc.StatusCode.PERMISSION_DENIED,
            f"identity {identity!r} may not call {method} (allowed: {', '.join(sorted(allowed))})",
        )
    return None
