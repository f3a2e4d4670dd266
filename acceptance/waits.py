"""Bounded waits: poll a condition until it holds or a deadline passes, and say what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

_MISSING = object()


class WaitTimeout(AssertionError):
    """A condition did not hold in time; the message names it and the last value observed."""


def wait_until(
    probe: Callable[[], T],
    condition: Callable[[T], bool] = bool,
    *,
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """Call `probe` until `condition(value)` holds; return that value or raise WaitTimeout.

    A probe that raises counts as not yet: the last exception is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last: object = _MISSING
    while True:
        try:
            value = probe()
            if condition(value):
                return value
            last = value
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting until {what}; last observed: {_describe(last)}")
        time.sleep(interval)


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
            raise WaitTimeout(f"timed out after {timeout:g}s waiting until {what}; last observed: {_describe(last)}")
        await asyncio.sleep(interval)


def _describe(value: object) -> str:
    if value is _MISSING:
        return "nothing (the probe never returned)"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    text = repr(value)
    return text if len(text) <= 500 else text[:500] + "..."
