"""Attacks on a secure stack, each undone after the scenario: plaintext and foreign-certificate callers,
impostor servers registered in Redis, calls as an identity that may not make them, Redis writes under
another service's user, and a deleted registry entry."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent import futures
from typing import Any

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hamcrest import assert_that, equal_to

from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.pki import Pki
from acceptance.registry_contract import EVENTS_KEY, index_key, instance_key
from ecosystem.api.risk.v1 import risk_pb2, risk_pb2_grpc
from ecosystem.names import GRPC_SERVICES
from ecosystem.security import SUITE, TlsFiles, expect_identity

IMPOSTOR_ENTRY_TTL_MS = 60_000


class _ApproveAll(risk_pb2_grpc.RiskMonitorServiceServicer):
    """What an attacker's risk monitor does: approve every order, and (here) count them."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def CheckOrder(self, request: risk_pb2.CheckOrderRequest, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.calls += 1
        return risk_pb2.CheckOrderResponse(decision=risk_pb2.DECISION_APPROVED, instance_id="impostor")


class Security(Driver):
    @property
    def _pki(self) -> Pki:
        pki = self._suite.stack.transport.pki
        assert pki is not None, f"target {self._suite.stack.name!r} runs plaintext: there is no security to attack"
        return pki

    # --- callers the stack must refuse -----------------------------------------------------------

    def ask_health_in_plaintext(self, service: str) -> None:
        self._ask_health(service, grpc.insecure_channel(self._suite.endpoint(service)))

    def ask_health_with_foreign_certificate(self, service: str) -> None:
        credentials = self._pki.self_signed(SUITE).channel_credentials()
        channel = grpc.secure_channel(self._suite.endpoint(service), credentials, options=expect_identity(service))
        self._ask_health(service, channel)

    def _ask_health(self, service: str, channel: grpc.Channel) -> None:
        with channel:
            try:
                health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=GRPC_SERVICES[service]), timeout=REACTION_MARGIN_S
                )
                self.state.refused = ""
            except grpc.RpcError as exc:
                self.state.refused = exc.code().name

    def expect_refused(self) -> None:
        assert self.state.refused, "the stack answered a caller it must refuse"
        assert_that(self.state.refused, equal_to("UNAVAILABLE"), "how the handshake refusal reached the caller")

    def call_as(self, identity: str, method: str, service: str, body: dict) -> None:
        """Call with the certificate of `identity` (one of the stack's own): authenticated, maybe not authorized."""
        self._suite.call(service, method, body, identity=identity)

    # --- impostors in the registry ---------------------------------------------------------------

    def register_impostor(self, service: str, identity: str) -> None:
        """An approve-all risk monitor with `identity`'s certificate (or a self-signed one), registered as `service`
        in Redis by someone who can write the registry."""
        files = self._pki.self_signed(service) if identity == "self-signed" else self._pki.files(identity)
        host = self._suite.stack.otlp_bind_host  # an address the services can reach, on every target
        servicer, server, port = self._serve_impostor(files, host)
        instance_id = f"impostor-{uuid.uuid4().hex[:8]}"
        incarnation = str(time.time_ns())
        self._write_entry(service, instance_id, host, port, incarnation)
        self.state.impostor = (servicer, instance_id, f"{host}:{port}")

        def remove() -> None:
            # As a deregistration does: entry and index gone, and `down` announced, so callers drop it at once
            # (an entry that only vanished stays callable until the expiry it claimed: a Redis restart).
            self._suite.redis.delete(instance_key(service, instance_id))
            self._suite.redis.zrem(index_key(service), instance_id)
            self._suite.redis.xadd(EVENTS_KEY, {"type": "down", "service": service, "instance_id": instance_id,
                                                     "incarnation": incarnation})
            server.stop(grace=None)
            self._suite.wait(
                lambda: self._suite.orders.dependency(service)["endpoints"],
                lambda endpoints: f"{host}:{port}" not in endpoints, timeout=REACTION_MARGIN_S,
                what=f"the trading engine has dropped the impostor {instance_id} of {service} at {host}:{port}",
            )

        self._suite.on_restore(f"remove the impostor {instance_id} of {service}", remove)
        self._suite.wait(
            lambda: self._suite.orders.dependency(service)["endpoints"],
            lambda endpoints: f"{host}:{port}" in endpoints, timeout=REACTION_MARGIN_S,
            what=f"the trading engine has read the impostor's entry for {service} from the registry",
        )

    def _serve_impostor(self, files: TlsFiles, host: str) -> tuple[_ApproveAll, grpc.Server, int]:
        servicer = _ApproveAll()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        risk_pb2_grpc.add_RiskMonitorServiceServicer_to_server(servicer, server)
        _, cert, key = files.read()
        port = server.add_secure_port(f"{host}:0", grpc.ssl_server_credentials([(key, cert)]))
        server.start()
        return servicer, server, port

    def _write_entry(self, service: str, instance_id: str, host: str, port: int, incarnation: str) -> None:
        client = self._suite.redis
        seconds, micros = client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        key = instance_key(service, instance_id)
        client.hset(key, mapping={
            "instance_id": instance_id, "service": service, "host": host, "port": port,
            "version": self._suite.declared.version, "api_version": "v1", "status": "SERVING",
            "started_at": now_ms, "heartbeat_at": now_ms, "incarnation": incarnation,
        })
        client.pexpire(key, IMPOSTOR_ENTRY_TTL_MS)
        client.zadd(index_key(service), {instance_id: now_ms + IMPOSTOR_ENTRY_TTL_MS})
        client.xadd(EVENTS_KEY, {"type": "up", "service": service, "instance_id": instance_id,
                                      "incarnation": incarnation})

    def expect_impostor_got_nothing(self) -> None:
        servicer, instance_id, endpoint = self.state.impostor
        assert_that(servicer.calls, equal_to(0), f"orders the impostor {instance_id} at {endpoint} decided")

    def expect_impostor_reported(self, service: str) -> None:
        _, instance_id, endpoint = self.state.impostor
        rejected = self._suite.orders.dependency(service).get("rejected", [])
        assert any(entry["instance_id"] == instance_id for entry in rejected), (
            f"the trading engine does not report the impostor {instance_id} at {endpoint} as rejected: {rejected}"
        )

    # --- Redis ----------------------------------------------------------------------------------

    def write_as(self, user: str, victim: str) -> None:
        """HSET a key of `victim`'s registry entry with `user`'s Redis credentials."""
        url = self._suite.stack.redis_url_for(user)
        with redis.Redis.from_url(url, socket_timeout=2) as client:
            try:
                client.hset(instance_key(victim, "forged"), "host", "203.0.113.7")
                self.state.refused = ""
            except redis.exceptions.NoPermissionError as exc:
                self.state.refused = str(exc)
        self._suite.on_restore(f"remove any forged entry of {victim}",
                               lambda: self._suite.redis.delete(instance_key(victim, "forged")))

    def expect_redis_refused(self) -> None:
        assert "no permissions" in self.state.refused, f"Redis accepted the write: {self.state.refused!r}"

    def delete_entry(self, service: str) -> None:
        [handle] = self._suite.stack.instances(service)
        self._suite.redis.delete(instance_key(service, handle.instance_id))
        self._suite.redis.zrem(index_key(service), handle.instance_id)

