"""How the suite reaches a stack's services: plaintext, or mTLS as one of the stack's identities.

    transport = Transport(pki)
    channel = transport.channel("127.0.0.1:43121", server="risk-monitor")          # as `suite`
    channel = transport.channel(endpoint, server="configuration-service", identity=ADMIN)

In secure mode the suite presents its own certificate (or the admin's, for configuration writes) and
accepts the server only if its certificate names the service the suite meant to reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from acceptance.pki import Pki
from ecosystem.security import INSECURE, SECURE, SUITE, expect_identity


@dataclass(frozen=True)
class Transport:
    pki: Pki | None = None

    @property
    def mode(self) -> str:
        return INSECURE if self.pki is None else SECURE

    def channel(
        self, endpoint: str, server: str = "", *, identity: str = SUITE, options: tuple[tuple[str, Any], ...] = ()
    ) -> grpc.Channel:
        """A channel to `endpoint`; in secure mode as `identity`, to a server that must prove to be `server`."""
        if self.pki is None:
            return grpc.insecure_channel(endpoint, options=options)
        credentials = self.pki.files(identity).channel_credentials()
        return grpc.secure_channel(endpoint, credentials, options=options + expect_identity(server))


PLAINTEXT = Transport()
