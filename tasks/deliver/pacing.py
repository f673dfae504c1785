"""How fast and how persistently we talk to a provider, enforced in this process.

A token bucket per provider keeps the sustained rate at the provider's limit (WhatsApp: 80
msg/s per number) with a bounded burst; a semaphore caps requests in flight. When a provider
says "slow down" (Retry-After, throttling codes) the whole bucket pauses, not just one
message, so a storm of 429s does not turn into a storm of retries. Prefect's global
concurrency limits are only a cross-worker layer on top (they are not a hard per-second cap).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque

from config.delivery_policy import Limit, Retries


class TokenBucket:
    """Tokens refill at `per_second` up to `burst`; each send takes one. On top, a sliding
    one-second log guarantees what providers actually count: never more than `per_second`
    sends in any window of one second (plus a small margin for network jitter), even right
    after an idle spell when the bucket is full."""

    WINDOW = 1.0
    MARGIN = 0.04

    def __init__(self, per_second: float | None, burst: float | None = None) -> None:
        self.rate = per_second
        self.capacity = max(1.0, burst or per_second or 1.0)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._sent: deque[float] = deque()
        self._per_window = max(1, int(per_second)) if per_second else 0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:  # FIFO: waiters are served in order
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if self.rate is None:
                    return
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                window = self.WINDOW + self.MARGIN
                while self._sent and self._sent[0] <= now - window:
                    self._sent.popleft()
                if len(self._sent) >= self._per_window:
                    await asyncio.sleep(self._sent[0] + window - now)
                    continue
                if self._tokens < 1.0:
                    await asyncio.sleep((1.0 - self._tokens) / self.rate)
                    continue
                self._tokens -= 1.0
                self._sent.append(now)
                return

    def pause(self, seconds: float) -> None:
        """Stop handing out tokens for `seconds` and start again from an empty bucket."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self._tokens = 0.0
            self._stamp = until


class Pace:
    """One provider's bucket and in-flight cap, and the shared gate when several processes
    send for the same provider."""

    def __init__(self, limit: Limit, gate: SharedGate | None = None) -> None:
        self.bucket = TokenBucket(limit.per_second, limit.burst)
        self.slots = asyncio.Semaphore(limit.concurrency)
        self.gate = gate


def share(limit: Limit, senders: int) -> Limit:
    """One sender's part of a provider's limit when `senders` processes send at once: their
    buckets together stay within the provider's rate in every second."""
    if senders <= 1 or limit.per_second is None:
        return limit
    burst = (limit.burst or limit.per_second) / senders
    return limit.model_copy(update={"per_second": limit.per_second / senders, "burst": burst})


def shared_limit_name(provider: str) -> str:
    return f"cadencia-provider-{provider}"


class SharedGate:
    """The cross-worker layer: a Prefect global rate limit per provider (slots decaying at
    the provider's rate), taken `step` slots at a time to keep API calls few. Strict: a
    missing limit fails the push instead of silently not limiting (`cadencia setup`)."""

    def __init__(self, provider: str, step: int) -> None:
        self.name = shared_limit_name(provider)
        self.step = max(1, step)
        self._left = 0
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            if self._left == 0:
                from prefect.concurrency.asyncio import rate_limit

                await rate_limit(self.name, occupy=self.step, strict=True)
                self._left = self.step
            self._left -= 1


def backoff(attempt: int, retries: Retries, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait before attempt `attempt + 1`: the provider's Retry-After when given
    (capped), else exponential from `base_seconds`; plus jitter so retries do not align."""
    if retry_after is not None:
        base = min(retry_after, retries.max_retry_after_seconds)
    else:
        base = min(retries.max_seconds, retries.base_seconds * (2 ** (attempt - 1)))
    return base * (1 + retries.jitter * rng.random())
