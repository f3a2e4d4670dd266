"""One structured JSON line per event, on stderr: `ts` (epoch seconds), `level`, `event`, then its fields.

Lifecycle events log at info. Decisions on the request path (an order accepted or rejected, a retry)
log at debug, so they cost nothing unless ECOSYSTEM_LOG_LEVEL=debug asks for them (the acceptance
suite does, to explain a failed scenario).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

_context: dict[str, str] = {}
_threshold = LEVELS["info"]


def configure(level: str) -> None:
    """Write lines of `level` and above from now on; ValueError names the levels there are."""
    global _threshold
    try:
        _threshold = LEVELS[level]
    except KeyError:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}") from None


def bind(**fields: str) -> None:
    """Fields carried by every later line of this process (service, instance_id)."""
    _context.update(fields)


def enabled(level: str) -> bool:
    return LEVELS[level] >= _threshold


def log_event(event: str, *, level: str = "info", **fields: Any) -> None:
    """Write one line; the bound fields win, so a line always names the process that wrote it."""
    if LEVELS[level] < _threshold:
        return
    line = {"ts": round(time.time(), 3), "level": level, "event": event, **fields, **_context}
    sys.stderr.write(json.dumps(line, default=str) + "\n")
    sys.stderr.flush()


def log_decision(event: str, **fields: Any) -> None:
    """A decision on the request path, at debug level."""
    if _threshold <= LEVELS["debug"]:
        log_event(event, level="debug", **fields)
