"""The in-process rate limiter: what the provider counts (sends per one-second window) never
exceeds the limit, and the limit is nearly reached; backoff honours Retry-After."""

from __future__ import annotations

import asyncio
import random
import time

from config.delivery_policy import Retries
from tasks.deliver.pacing import TokenBucket, backoff


def _max_per_window(stamps: list[float], window: float = 1.0) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, t in enumerate(stamps):
        while stamps[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_bucket_never_exceeds_the_rate_in_any_second_and_nearly_reaches_it() -> None:
    async def run() -> list[float]:
        bucket = TokenBucket(per_second=40, burst=40)  # a full bucket at the start
        stamps: list[float] = []

        async def one() -> None:
            await bucket.take()
            stamps.append(time.monotonic())

        await asyncio.gather(*(one() for _ in range(100)))
        return stamps

    stamps = asyncio.run(run())
    assert _max_per_window(stamps) <= 40
    elapsed = max(stamps) - min(stamps)
    # 100 sends at 40/s: two full windows after the first burst, ~2.0-2.1 s.
    assert 1.9 <= elapsed <= 2.6


def test_pause_stops_everyone_until_it_ends() -> None:
    async def run() -> float:
        bucket = TokenBucket(per_second=1000)
        await bucket.take()
        bucket.pause(0.3)
        start = time.monotonic()
        await bucket.take()
        return time.monotonic() - start

    assert asyncio.run(run()) >= 0.29


def test_unlimited_bucket_does_not_wait() -> None:
    async def run() -> float:
        bucket = TokenBucket(per_second=None)
        start = time.monotonic()
        for _ in range(10_000):
            await bucket.take()
        return time.monotonic() - start

    assert asyncio.run(run()) < 1.0


def test_backoff_doubles_is_capped_and_prefers_retry_after() -> None:
    retries = Retries(base_seconds=0.5, max_seconds=4, jitter=0.0, max_retry_after_seconds=60)
    rng = random.Random(1)
    assert [backoff(a, retries, None, rng) for a in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 4]
    assert backoff(1, retries, 7.0, rng) == 7.0
    assert backoff(1, retries, 600.0, rng) == 60.0
    jittery = Retries(base_seconds=1, jitter=0.5)
    delays = {backoff(1, jittery, None, rng) for _ in range(20)}
    assert all(1.0 <= d <= 1.5 for d in delays) and len(delays) > 1
