"""One structured JSON line per event, on stderr: `ts` (epoch seconds), `level`, `event`, then its fields.

Lifecycle events log at info. Decisions on the request path (an order accepted or rejected, a retry)
log at debug, so they cost nothing unless ECOSYSTEM_LOG_LEVEL=debug asks for them (the acceptance
suite does, to explain a failed scenario).

The lines go through the stdlib `logging` module: each module writes to its own logger under
"ecosystem" (`ecosystem.discovery`, `ecosystem.services.risk_monitor`, ...), and the "ecosystem" logger
holds the level and the one handler. The fields naming the service (`bind`) live in a context variable,
so several services in one process (the tests, the benchmarks) each name themselves: the host's task
binds them, and every task it starts inherits them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_LEVEL_NAMES = {number: name for name, number in LEVELS.items()}

ROOT = "ecosystem"
_root = logging.getLogger(ROOT)
_loggers: dict[str, logging.Logger] = {}
_context: ContextVar[Mapping[str, str]] = ContextVar("ecosystem_log_context", default=MappingProxyType({}))


class JsonFormatter(logging.Formatter):
    """`ts` rounded to the millisecond, `level`, `event`, the event's fields, then the bound fields (which win)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
            **getattr(record, "context", {}),
        }
        return json.dumps(line, default=str)


class _StderrHandler(logging.Handler):
    """Writes to `sys.stderr` as it is at each line, so a stream swapped in later (pytest's capture) gets it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


_handler = _StderrHandler()
_handler.setFormatter(JsonFormatter())
# The lines are this package's own output, not the host application's: a root handler (behave's log
# capture, a script's basicConfig) must neither swallow nor repeat them.
_root.propagate = False


def configure(level: str) -> None:
    """Write lines of `level` and above from now on; ValueError names the levels there are."""
    try:
        number = LEVELS[level]
    except KeyError:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}") from None
    _root.setLevel(number)
    if _handler not in _root.handlers:
        _root.addHandler(_handler)


def bind(**fields: str) -> None:
    """Fields carried by every later line of this task and of the tasks it starts (service, instance_id)."""
    # A new mapping, never an update: the tasks that copied the context before keep what they had.
    _context.set({**_context.get(), **fields})


def enabled(level: str) -> bool:
    return _root.isEnabledFor(LEVELS[level])


def log_event(event: str, *, level: str = "info", **fields: Any) -> None:
    """Write one line; the bound fields win, so a line always names the service that wrote it."""
    _log(_caller_logger(), LEVELS[level], event, fields)


def log_decision(event: str, **fields: Any) -> None:
    """A decision on the request path, at debug level."""
    if decisions_logged():
        _log(_caller_logger(), logging.DEBUG, event, fields)


def decisions_logged() -> bool:
    """Whether `log_decision` writes anything: where its fields cost work to build, build them only then."""
    # At info this test is the whole cost on the request path: a plain attribute read, not isEnabledFor's lookups.
    return _root.level <= logging.DEBUG


def _log(logger: logging.Logger, level: int, event: str, fields: Mapping[str, Any]) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields, "context": _context.get()})


def _caller_logger() -> logging.Logger:
    """The logger of the module that called log_event or log_decision, under "ecosystem"."""
    module = sys._getframe(2).f_globals.get("__name__", ROOT)
    logger = _loggers.get(module)
    if logger is None:
        name = module if module == ROOT or module.startswith(ROOT + ".") else f"{ROOT}.{module}"
        logger = _loggers[module] = logging.getLogger(name)
    return logger


configure("info")
