"""One structured JSON line per lifecycle event, on stderr."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

_context: dict[str, str] = {}


def bind(**fields: str) -> None:
    """Fields carried by every later line of this process (service, instance_id)."""
    _context.update(fields)


def log_event(event: str, **fields: Any) -> None:
    """Write one line; the bound fields win, so a line always names the process that wrote it."""
    line = {"ts": round(time.time(), 3), "event": event, **fields, **_context}
    sys.stderr.write(json.dumps(line, default=str) + "\n")
    sys.stderr.flush()
