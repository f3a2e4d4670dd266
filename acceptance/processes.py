"""Child processes that cannot outlive the suite."""

from __future__ import annotations

import shutil


def dying_with_parent(args: list[str]) -> list[str]:
    """`args` run so that the kernel SIGKILLs the process when its parent thread dies, even by SIGKILL.

    setpriv (util-linux) sets the parent-death signal and execs. A preexec_fn would do the same, but
    it makes Python fork() a process that uses gRPC, which can abort the child before it execs.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *args] if setpriv else args
