"""Send a batch of messages concurrently, each provider at its own pace, retrying what is
safe to retry. Returns one final Result per message; the ledger decides what it means."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from config.delivery_policy import Retries
from tasks.deliver.pacing import Pace, backoff
from tasks.deliver.providers.base import Message, Provider, Result


async def send_one(
    message: Message, provider: Provider, pace: Pace, retries: Retries, rng: random.Random
) -> tuple[Result, int]:
    """(final result, attempts made). Only `retryable` answers are tried again."""
    attempt = 0
    while True:
        attempt += 1
        async with pace.slots:
            if pace.gate is not None:  # other workers send for this provider too
                await pace.gate.take()
            # The token is taken last, right before the request leaves: the provider counts
            # arrivals, so nothing may sit between the two.
            await pace.bucket.take()
            try:
                result = await provider.send(message)
            except Exception as exc:  # noqa: BLE001 - a bug must not strand the batch
                # The request may have left: never re-send blindly.
                result = Result("ambiguous", code=type(exc).__name__, detail=str(exc)[:300])
        if result.outcome != "retryable" or result.stall or attempt >= retries.attempts:
            return result, attempt
        delay = backoff(attempt, retries, result.retry_after, rng)
        if result.retry_after is not None or result.code in THROTTLED:
            # The provider said slow down: everyone on this provider waits, not just us.
            pace.bucket.pause(delay)
        await asyncio.sleep(delay)


# Codes that mean "you are too fast" rather than "I am broken" (pause the whole provider).
THROTTLED = {"130429", "131056", "80007", "4", "20429", "429", "REQUEST_LIMIT_EXCEEDED"}


async def send_batch(
    messages: Sequence[tuple[Message, str]],
    providers: dict[str, Provider],
    paces: dict[str, Pace],
    retries: Retries,
    on_done: Callable[[int], None] | None = None,
    seed: int | None = None,
) -> list[tuple[Result, int]]:
    """Every (message, provider name) sent concurrently; results in input order."""
    rng = random.Random(seed)

    async def one(message: Message, provider: str) -> tuple[Result, int]:
        out = await send_one(message, providers[provider], paces[provider], retries, rng)
        if on_done is not None:
            on_done(1)
        return out

    return list(await asyncio.gather(*(one(m, p) for m, p in messages)))
