"""Child processes that cannot outlive the suite."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses), the state
    first (so utime and stime are [11] and [12]). FileNotFoundError when there is no such process."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def dying_with_parent(args: list[str]) -> list[str]:
    """`args` run so that the kernel SIGKILLs the process when its parent thread dies, even by SIGKILL.

    setpriv (util-linux) sets the parent-death signal and execs. A preexec_fn would do the same, but
    it makes Python fork() a process that uses gRPC, which can abort the child before it execs.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *args] if setpriv else args


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every live process's group, then SIGKILL the groups still running `grace` seconds later; reap.

    The processes must lead their own session (start_new_session=True): a command such as `sh start.sh` or
    `npm start` runs the real server as a grandchild, which only its group's signal reaches.
    """
    live = [process for process in processes if process.poll() is None]
    for process in live:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in live:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        _signal_group(process, signal.SIGKILL)  # what the leader left behind in its group


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone
