"""Bounded waits: poll a condition until it holds or a deadline passes, and say what was awaited.

`poll` returns how the wait went (the value, how many polls, how long), so a report can show one
summary per wait instead of every probe; `holds_for` checks that a condition stays true for a while.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_MISSING = object()


class WaitTimeout(AssertionError):
    """A condition did not hold in time; the message names it and the last value observed."""

    def __init__(self, message: str, *, polls: int = 0, elapsed_s: float = 0.0, last: str = "") -> None:
        super().__init__(message)
        self.polls = polls
        self.elapsed_s = elapsed_s
        self.last = last


@dataclass(frozen=True)
class Polled(Generic[T]):
    """A wait that ended: the value that met the condition, after `polls` probes in `elapsed_s`."""

    value: T
    polls: int
    elapsed_s: float


def poll(
    probe: Callable[[], T],
    condition: Callable[[T], bool] = bool,
    *,
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> Polled[T]:
    """Call `probe` until `condition(value)` holds; raise WaitTimeout when `timeout` passes first.

    A probe that raises counts as not yet: the last exception is reported on timeout.
    """
    started = time.monotonic()
    deadline = started + timeout
    last: object = _MISSING
    polls = 0
    while True:
        polls += 1
        try:
            value = probe()
            if condition(value):
                return Polled(value, polls, time.monotonic() - started)
            last = value
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            observed = describe(last)
            raise WaitTimeout(
                f"timed out after {timeout:g}s waiting until {what}; last observed: {observed}",
                polls=polls, elapsed_s=time.monotonic() - started, last=observed,
            )
        time.sleep(interval)


def wait_until(
    probe: Callable[[], T],
    condition: Callable[[T], bool] = bool,
    *,
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """`poll`, returning only the value that met the condition."""
    return poll(probe, condition, timeout=timeout, what=what, interval=interval).value


def holds_for(
    probe: Callable[[], T],
    condition: Callable[[T], bool],
    *,
    duration: float,
    what: str,
    interval: float = 0.05,
) -> Polled[T]:
    """Check that `condition(probe())` holds at every poll for `duration`; AssertionError at the first miss."""
    started = time.monotonic()
    polls = 0
    while True:
        polls += 1
        value = probe()
        elapsed = time.monotonic() - started
        if not condition(value):
            raise AssertionError(f"{what} stopped holding after {elapsed:.2f}s; observed: {describe(value)}")
        if elapsed >= duration:
            return Polled(value, polls, elapsed)
        time.sleep(min(interval, duration - elapsed))


async def wait_until_async(
    probe: Callable[[], Awaitable[T]],
    condition: Callable[[T], bool] = bool,
    *,
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """The asyncio form of `wait_until`."""
    deadline = time.monotonic() + timeout
    last: object = _MISSING
    while True:
        try:
            value = await probe()
            if condition(value):
                return value
            last = value
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting until {what}; last observed: {describe(last)}")
        await asyncio.sleep(interval)


def describe(value: object, limit: int = 500) -> str:
    """A value as a report shows it: exceptions by type and message, anything else by repr, cut to `limit`."""
    if value is _MISSING:
        return "nothing (the probe never returned)"
    if isinstance(value, BaseException):
        text = f"{type(value).__name__}: {value}"
    else:
        own = getattr(value, "describe", None)  # RpcResult and the like describe themselves
        text = own() if callable(own) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
