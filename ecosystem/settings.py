"""Every setting of a service, read from environment variables with documented defaults."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ecosystem import __version__
from ecosystem.logs import LEVELS
from ecosystem.names import ENVIRONMENTS
from ecosystem.security import INSECURE, MODES, SECURE, SecurityError, TlsFiles


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def _int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


# New traces kept when tracing is on: one request in a hundred that arrives without a trace of its caller. A caller
# that wants its request traced sends `traceparent` with the sampled flag, which every service follows (parent-based
# sampling), so such traces are always whole; docs/ARCHITECTURE.md ("Tracing") says why one in a hundred.
DEFAULT_TRACE_SAMPLE_RATIO = 0.01
# OTEL_TRACES_SAMPLER values served: only parent-based ones, since a service that ignored its caller's decision
# would leave fragments of traces (its own spans of a trace the caller dropped, or a gap in one it kept).
_PARENT_BASED_SAMPLERS = {"parentbased_traceidratio": None, "parentbased_always_on": 1.0, "parentbased_always_off": 0.0}


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 5
    recovery_timeout_s: float = 60.0
    half_open_max_calls: int = 1


@dataclass(frozen=True)
class Settings:
    """One service process's settings; `Settings.from_env()` documents each variable."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    listen_host: str = "127.0.0.1"
    port: int = 0
    advertise_host: str = "127.0.0.1"
    environment: str = "development"
    registry_ttl_ms: int = 15_000
    config_cache_ttl_s: float = 300.0
    call_timeout_s: float = 5.0
    retry_attempts: int = 3
    shutdown_grace_s: float = 5.0
    otlp_endpoint: str = ""
    trace_sample_ratio: float = DEFAULT_TRACE_SAMPLE_RATIO
    config_seed: str = ""
    instance_id: str = ""
    version: str = __version__
    log_level: str = "info"
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    # from_env() is secure unless told otherwise; Settings built in code (tests, benchmarks) say what they want.
    security: str = INSECURE
    tls: TlsFiles | None = None  # this service's identity; required in secure mode
    reflection: bool = True
    # The most orders the engine answers GetOrder for, and strategies risk-monitor keeps exposure of (docs/LIMITS.md).
    orders_kept: int = 10_000
    strategies_kept: int = 10_000

    def __post_init__(self) -> None:
        if self.security not in MODES:
            raise SecurityError(f"security {self.security!r} is not one of {', '.join(MODES)}")
        if (self.security == SECURE) != (self.tls is not None):
            raise SecurityError("secure mode needs the TLS files of this service's identity, and only secure mode")
        if not 0.0 <= self.trace_sample_ratio <= 1.0:
            raise ValueError(f"trace sample ratio {self.trace_sample_ratio} is not between 0 and 1")

    @property
    def secure(self) -> bool:
        return self.security == SECURE

    @classmethod
    def from_env(cls) -> Settings:
        """Read ECOSYSTEM_* variables (and the OTEL_* ones below); unset means the default.

        ECOSYSTEM_REDIS_URL             redis://127.0.0.1:6379/0
        ECOSYSTEM_LISTEN_HOST           127.0.0.1 (0.0.0.0 in a container)
        ECOSYSTEM_PORT                  0 = an ephemeral port, registered as bound
        ECOSYSTEM_ADVERTISE_HOST        the listen host, or this host's name when listening on 0.0.0.0
        ECOSYSTEM_ENVIRONMENT           development | testing | production | docker
        ECOSYSTEM_REGISTRY_TTL_MS       15000; heartbeats every third of it
        ECOSYSTEM_CONFIG_CACHE_TTL_S    300
        ECOSYSTEM_CALL_TIMEOUT_S        5, for calls that arrive without a deadline
        ECOSYSTEM_RETRY_ATTEMPTS        3, attempts per call on UNAVAILABLE
        ECOSYSTEM_BREAKER_FAILURE_THRESHOLD   5 consecutive transport failures open a breaker
        ECOSYSTEM_BREAKER_RECOVERY_TIMEOUT_S  60 in OPEN before half-open probes
        ECOSYSTEM_BREAKER_HALF_OPEN_MAX_CALLS 1 probe at a time
        ECOSYSTEM_SHUTDOWN_GRACE_S      5 to drain in-flight calls on SIGTERM
        ECOSYSTEM_INSTANCE_ID           a fresh UUID per process; set it to find this process in the registry
        ECOSYSTEM_CONFIG_SEED           configuration-service only: the seed file (default config/seed.toml)
        ECOSYSTEM_LOG_LEVEL             info | debug (also each order decision and retry) | warning | error
        ECOSYSTEM_SECURITY              secure (mTLS, authorization; needs the three TLS files) | insecure (plaintext)
        ECOSYSTEM_TLS_CA_FILE           PEM of the stack's CA, which issued every certificate (docs/SECURITY.md)
        ECOSYSTEM_TLS_CERT_FILE         PEM certificate whose DNS subjectAltName is this service's name
        ECOSYSTEM_TLS_KEY_FILE          PEM private key of that certificate
        ECOSYSTEM_REFLECTION            on | off (e.g. in production)
        ECOSYSTEM_ORDERS_KEPT           10000: trading-system-engine's order history (GetOrder), oldest forgotten
        ECOSYSTEM_STRATEGIES_KEPT       10000: risk-monitor's exposures, the least recently active forgotten
        OTEL_EXPORTER_OTLP_ENDPOINT     export spans over OTLP/gRPC there; unset = no tracing
        OTEL_TRACES_SAMPLER             parentbased_traceidratio (default) | parentbased_always_on |
                                        parentbased_always_off: a request whose `traceparent` says sampled is
                                        traced, one that says not sampled is not; the others are root traces
        OTEL_TRACES_SAMPLER_ARG         0.01: the share of root traces kept by parentbased_traceidratio
        """
        listen_host = _env("ECOSYSTEM_LISTEN_HOST", cls.listen_host)
        default_advertise = socket.gethostname() if listen_host in ("0.0.0.0", "::", "[::]") else listen_host
        environment = _env("ECOSYSTEM_ENVIRONMENT", cls.environment)
        if environment not in ENVIRONMENTS:
            raise ValueError(f"ECOSYSTEM_ENVIRONMENT={environment!r} is not one of {', '.join(ENVIRONMENTS)}")
        log_level = _env("ECOSYSTEM_LOG_LEVEL", cls.log_level)
        if log_level not in LEVELS:
            raise ValueError(f"ECOSYSTEM_LOG_LEVEL={log_level!r} is not one of {', '.join(LEVELS)}")
        security = _env("ECOSYSTEM_SECURITY", SECURE)
        if security not in MODES:
            raise ValueError(f"ECOSYSTEM_SECURITY={security!r} is not one of {', '.join(MODES)}")
        reflection = _env("ECOSYSTEM_REFLECTION", "on")
        if reflection not in ("on", "off"):
            raise ValueError(f"ECOSYSTEM_REFLECTION={reflection!r} is not on or off")
        return cls(
            security=security,
            tls=_tls_files() if security == SECURE else None,
            reflection=reflection == "on",
            redis_url=_env("ECOSYSTEM_REDIS_URL", cls.redis_url),
            listen_host=listen_host,
            port=_int("ECOSYSTEM_PORT", cls.port),
            advertise_host=_env("ECOSYSTEM_ADVERTISE_HOST", default_advertise),
            environment=environment,
            registry_ttl_ms=_int("ECOSYSTEM_REGISTRY_TTL_MS", cls.registry_ttl_ms),
            config_cache_ttl_s=_float("ECOSYSTEM_CONFIG_CACHE_TTL_S", cls.config_cache_ttl_s),
            call_timeout_s=_float("ECOSYSTEM_CALL_TIMEOUT_S", cls.call_timeout_s),
            retry_attempts=_int("ECOSYSTEM_RETRY_ATTEMPTS", cls.retry_attempts),
            shutdown_grace_s=_float("ECOSYSTEM_SHUTDOWN_GRACE_S", cls.shutdown_grace_s),
            otlp_endpoint=_env("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            trace_sample_ratio=_trace_sample_ratio(),
            config_seed=_env("ECOSYSTEM_CONFIG_SEED", ""),
            instance_id=_env("ECOSYSTEM_INSTANCE_ID", ""),
            log_level=log_level,
            orders_kept=_int("ECOSYSTEM_ORDERS_KEPT", cls.orders_kept),
            strategies_kept=_int("ECOSYSTEM_STRATEGIES_KEPT", cls.strategies_kept),
            breaker=BreakerSettings(
                failure_threshold=_int("ECOSYSTEM_BREAKER_FAILURE_THRESHOLD", 5),
                recovery_timeout_s=_float("ECOSYSTEM_BREAKER_RECOVERY_TIMEOUT_S", 60.0),
                half_open_max_calls=_int("ECOSYSTEM_BREAKER_HALF_OPEN_MAX_CALLS", 1),
            ),
        )


def _trace_sample_ratio() -> float:
    """The share of root traces kept, from OpenTelemetry's standard sampler variables."""
    sampler = _env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    if sampler not in _PARENT_BASED_SAMPLERS:
        raise ValueError(
            f"OTEL_TRACES_SAMPLER={sampler!r} is not one of {', '.join(_PARENT_BASED_SAMPLERS)}: a service must "
            "follow its caller's sampling decision, or traces come apart"
        )
    fixed = _PARENT_BASED_SAMPLERS[sampler]
    if fixed is not None:
        return fixed
    ratio = _float("OTEL_TRACES_SAMPLER_ARG", DEFAULT_TRACE_SAMPLE_RATIO)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={ratio:g} is not between 0 and 1")
    return ratio


def _tls_files() -> TlsFiles:
    names = ("ECOSYSTEM_TLS_CA_FILE", "ECOSYSTEM_TLS_CERT_FILE", "ECOSYSTEM_TLS_KEY_FILE")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise SecurityError(
            f"ECOSYSTEM_SECURITY=secure (the default) needs {', '.join(missing)}: the stack's CA and this service's "
            "certificate and key (make stack creates them); ECOSYSTEM_SECURITY=insecure serves plaintext"
        )
    return TlsFiles(*(Path(os.environ[name]) for name in names))
