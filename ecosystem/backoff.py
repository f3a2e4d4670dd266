"""How long to wait before the next try: one policy object for every retry and reconnect loop.

    RECONNECT = Backoff(initial_s=0.2, max_s=2.0)      # 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, ...
    await asyncio.sleep(RECONNECT.delay(failures))     # failures counts from 1 since the last success

A loop keeps its own count of consecutive failures and resets it on success, so the policy itself is
immutable and one instance can be shared by every loop that follows it. `max_s == initial_s` gives a
constant wait.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: `initial_s * multiplier ** (attempt - 1)`, capped at `max_s`.

    `jitter` is the fraction of each delay that may be taken off at random (0.0: exact delays; 0.5: each
    delay is drawn from [delay/2, delay]), so that many clients that lost the same peer do not all come
    back in the same instant.
    """

    initial_s: float
    max_s: float
    multiplier: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"backoff needs 0 < initial_s <= max_s, got {self.initial_s} and {self.max_s}")
        if self.multiplier < 1:
            raise ValueError(f"a backoff multiplier below 1 would shrink the waits, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter is a fraction in [0, 1], got {self.jitter}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th consecutive failure (1 for the first)."""
        if attempt < 1:
            raise ValueError(f"attempts count from 1, got {attempt}")
        steps = attempt - 1
        if self.multiplier > 1:
            # Steps past the cap change nothing; bounding them keeps a long outage from overflowing the float.
            steps = min(steps, math.ceil(math.log(self.max_s / self.initial_s, self.multiplier)))
        delay = min(self.initial_s * self.multiplier**steps, self.max_s)
        if self.jitter:
            delay *= 1 - self.jitter * random.random()
        return delay
