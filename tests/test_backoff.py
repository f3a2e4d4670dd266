"""The backoff policy: exponential waits up to a cap, optional jitter, refused nonsense."""

from __future__ import annotations

import pytest

from ecosystem.backoff import Backoff


def test_the_wait_doubles_from_the_first_delay_up_to_the_cap() -> None:
    policy = Backoff(initial_s=0.2, max_s=2.0)

    assert [policy.delay(n) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


def test_a_long_outage_stays_at_the_cap() -> None:
    assert Backoff(initial_s=0.01, max_s=5.0, multiplier=10.0).delay(10**9) == 5.0


def test_an_equal_first_delay_and_cap_is_a_constant_wait() -> None:
    policy = Backoff(initial_s=0.5, max_s=0.5)

    assert {policy.delay(n) for n in range(1, 20)} == {0.5}


def test_jitter_takes_at_most_its_fraction_off_each_wait() -> None:
    policy = Backoff(initial_s=1.0, max_s=1.0, jitter=0.5)

    delays = [policy.delay(1) for _ in range(200)]

    assert all(0.5 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": 0.0, "max_s": 1.0}, "0 < initial_s <= max_s"),
        ({"initial_s": 2.0, "max_s": 1.0}, "0 < initial_s <= max_s"),
        ({"initial_s": 0.1, "max_s": 1.0, "multiplier": 0.5}, "multiplier below 1"),
        ({"initial_s": 0.1, "max_s": 1.0, "jitter": 1.5}, r"jitter is a fraction in \[0, 1\]"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="attempts count from 1"):
        Backoff(initial_s=0.1, max_s=1.0).delay(0)
