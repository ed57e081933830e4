"""The rate limit's sliding window (issue #14, point 15).

A fixed one-minute window lets a client through twice over across a minute boundary: 100
requests at 12:00:59 and 100 more at 12:01:00 (182 of 200 passed in 2.2 s). Here each client's
requests are counted in buckets of ``BUCKET_SECONDS`` (5 s), and a request is let through only
while the current bucket and the ``BUCKETS`` (12) before it hold at most the limit. Those
buckets always cover the last 60 seconds and up to 5 more, so **no 60-second span, wherever it
starts, ever lets through more than the limit**: the margin is zero. The price is on the
other side: a client that spent its whole allowance at once waits 60 to 65 seconds
(``Retry-After``), not exactly 60.

Each bucket is an atomic counter in Django's cache (``cache_guard.counter_incr``), shared by
every process when the cache is Redis and kept per process while it is down. A request is
counted first and its count taken back when it is refused, so a refused request spends none of
the allowance, and two requests racing for the last place cannot both get it (one may lose it,
which errs on the safe side).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .cache_guard import counter_incr, counters_get

WINDOW_SECONDS = 60
BUCKET_SECONDS = 5
BUCKETS = WINDOW_SECONDS // BUCKET_SECONDS  # earlier buckets counted with the current one
BUCKET_TTL = WINDOW_SECONDS + 3 * BUCKET_SECONDS


@dataclass(frozen=True)
class Verdict:
    """One request's fate: let through, or refused with the seconds until one would pass and
    whether it is the first refusal in a minute (the one that is audited)."""

    allowed: bool
    retry_after: int = 0
    first_refusal: bool = False


def _key(who: str, bucket: int) -> str:
    return f"ratelimit:{who}:{bucket}"


def _retry_after(counts: list[int], *, bucket: int, limit: int, now: float) -> int:
    """Seconds until the oldest buckets have left the window and one more request fits.
    ``counts`` runs from the oldest bucket counted to the current one; the oldest leaves the
    window when bucket ``bucket + 1`` begins, the next one a bucket later, and so on."""
    total = sum(counts)
    for leaving, count in enumerate(counts, start=1):
        total -= count
        if total < limit:
            return max(1, math.ceil((bucket + leaving) * BUCKET_SECONDS - now))
    return WINDOW_SECONDS + BUCKET_SECONDS  # not reached: every bucket has left by then


def rate_limit_hit(who: str, *, limit: int, now: float) -> Verdict:
    """Count one request of ``who`` at ``now`` (seconds since the epoch) against ``limit``
    requests in any 60 seconds."""
    bucket = int(now // BUCKET_SECONDS)
    current = counter_incr(_key(who, bucket), timeout=BUCKET_TTL)
    earlier_keys = [_key(who, number) for number in range(bucket - BUCKETS, bucket)]
    earlier = counters_get(earlier_keys)
    counts = [earlier[key] for key in earlier_keys]
    if sum(counts) + current <= limit:
        return Verdict(allowed=True)
    counter_incr(_key(who, bucket), timeout=BUCKET_TTL, delta=-1)  # refused: not counted
    counts.append(max(current - 1, 0))
    first = counter_incr(f"ratelimit:{who}:refused", timeout=WINDOW_SECONDS) == 1
    return Verdict(
        allowed=False,
        retry_after=_retry_after(counts, bucket=bucket, limit=limit, now=now),
        first_refusal=first,
    )
