"""The rate limit's sliding window (issue #14, point 15; dcmms_release/ratelimit.py,
docs/security.md §1d): no 60-second span lets more than the limit through, even across a
minute boundary, where the fixed window let 182 of 200 requests through in 2.2 s."""

from __future__ import annotations

import pytest

from dcmms_release import cache_guard
from dcmms_release.ratelimit import rate_limit_hit
from dcmms_release.security import RateLimitMiddleware

pytestmark = pytest.mark.django_db

MINUTE = 1_900_000_020.0  # a minute boundary (divisible by 60)


@pytest.fixture(autouse=True)
def _no_outage():
    cache_guard.reset()
    yield
    cache_guard.reset()


def test_rate_limit_lets_at_most_100_of_200_through_when_sent_across_a_minute_boundary(
    client, monkeypatch
):
    times = iter(MINUTE - 1.1 + 0.011 * n for n in range(200))  # 2.2 s around the boundary
    monkeypatch.setattr(RateLimitMiddleware, "clock", staticmethod(lambda: next(times)))
    statuses = [client.get("/", REMOTE_ADDR="198.51.100.23").status_code for _ in range(200)]
    assert statuses[:100] == [302] * 100  # the first hundred go through
    assert statuses[100:] == [429] * 100  # after the boundary too: the window slides


def _admitted(arrivals: list[float], *, limit: int, who: str = "ip192.0.2.1") -> list[float]:
    return [t for t in arrivals if rate_limit_hit(who, limit=limit, now=t).allowed]


def test_rate_limit_hit_never_lets_more_than_the_limit_through_in_any_60_seconds_when_flooded():
    # bursts just before each minute boundary and a steady trickle between them, for 5 minutes
    arrivals = sorted(
        [MINUTE + 60 * m - 0.5 + 0.004 * n for m in range(1, 6) for n in range(100)]
        + [MINUTE + 0.25 * n for n in range(1200)]
    )
    admitted = _admitted(arrivals, limit=100)
    for start in admitted:  # every 60-second span that starts at an admitted request
        assert sum(1 for t in admitted if start <= t < start + 60) <= 100
    assert len(admitted) >= 4 * 100  # and the allowance is used: about 100 per 60 to 65 s


def test_rate_limit_hit_lets_a_request_through_at_retry_after_when_refused_ones_kept_coming():
    for n in range(100):
        assert rate_limit_hit("u7", limit=100, now=MINUTE + 10 + 0.01 * n).allowed
    refused = rate_limit_hit("u7", limit=100, now=MINUTE + 12)
    assert not refused.allowed and refused.first_refusal
    assert 60 <= refused.retry_after <= 65
    for n in range(200):  # a client that keeps retrying spends none of its allowance
        again = rate_limit_hit("u7", limit=100, now=MINUTE + 12 + 0.25 * n)
        assert not again.allowed and not again.first_refusal
    retry_at = MINUTE + 12 + refused.retry_after
    assert not rate_limit_hit("u7", limit=100, now=retry_at - 1).allowed
    assert rate_limit_hit("u7", limit=100, now=retry_at).allowed
    assert rate_limit_hit("u8", limit=100, now=MINUTE + 12).allowed  # others have their own
