"""Signed status webhooks, posted back the way each provider posts them.

After a message is accepted its whole webhook story is planned at once (sandbox/events.py:
sent → delivered → read → reply, or a late failure, fixed per ref by the seed) and played in a
background task with `webhook_delay_ms` between steps, so answering the send never waits for
a webhook. One shared httpx.AsyncClient posts them. A webhook that keeps failing is given up
after a few tries and counted, never raised: the receiver under test may be down on purpose.
"""

from __future__ import annotations

import asyncio

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.events import Plans, Step, WebhookConfig
from sandbox.faults import Faults
from sandbox.providers.base import Message
from sandbox.record import Record

ATTEMPTS = 3
# httpcore's pool does work proportional to connections x queued requests on every request
# (encode/httpcore#1035): thousands of webhooks queued in the pool would eat the CPU the
# sandbox needs for answering sends. A semaphore keeps the pool's queue empty instead.
POSTS_IN_FLIGHT = 8

__all__ = ["Callbacks", "WebhookConfig"]


class Callbacks:
    def __init__(
        self, config: WebhookConfig, record: Record, sendgrid_key: ec.EllipticCurvePrivateKey
    ) -> None:
        self.config = config
        self.record = record
        self.client: httpx.AsyncClient | None = None
        self.gate = asyncio.Semaphore(POSTS_IN_FLIGHT)
        self.tasks: set[asyncio.Task[None]] = set()
        self.plans = Plans(config, sendgrid_key)

    async def open(self) -> None:
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(5.0),
            limits=httpx.Limits(
                max_connections=POSTS_IN_FLIGHT, max_keepalive_connections=POSTS_IN_FLIGHT
            ),
        )

    async def close(self) -> None:
        self.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def schedule(self, provider: str, message: Message, provider_id: str, faults: Faults) -> None:
        if not self.config.enabled or self.client is None:
            return
        steps = self.plans.steps(provider, message, provider_id, faults)
        if not steps:
            return
        task = asyncio.get_running_loop().create_task(
            self._play(provider, steps, faults.webhook_delay_ms / 1000)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _play(self, provider: str, steps: list[Step], delay: float) -> None:
        for step in steps:
            await asyncio.sleep(delay)
            await self._post(provider, *step())

    async def _post(self, provider: str, url: str, body: bytes, headers: dict[str, str]) -> None:
        assert self.client is not None
        for attempt in range(ATTEMPTS):
            try:
                async with self.gate:
                    response = await self.client.post(url, content=body, headers=headers)
                if response.status_code < 300:
                    self.record.webhooks_sent[provider] += 1
                    return
            except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):
                pass  # the receiver is down or the URL is bad: retry, then count it
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(0.1 * 2**attempt)
        self.record.webhooks_failed[provider] += 1
