"""Child processes that cannot outlive the suite."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> Callable[[], None]:
    """A preexec_fn: the kernel SIGKILLs the child when its parent thread dies, even by SIGKILL."""
    parent_pid = os.getpid()

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        # If the parent died between fork and prctl, nobody would ever send that signal.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec
