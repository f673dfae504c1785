"""What can go wrong, on demand: the fault model (validated once, when it is set) and the
per-run state that applies it on the hot path (seeded RNG, rolling rate windows).

Everything is off by default, so a sandbox with no faults behaves like a healthy provider.
Random draws come from one `random.Random(seed)` in request order, so a sequential client sees
the same faults on every run; engagement (delivered, read, reply...) is drawn per ref from a
hash instead, so it does not depend on the order in which messages arrive.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Provider = Literal[
    "whatsapp",
    "rbm",
    "twilio_sms",
    "twilio_calls",
    "sendgrid",
    "salesforce",
    "hubspot",
    "call_webhook",
    "in_app",
]
PROVIDERS: tuple[str, ...] = Provider.__args__  # type: ignore[attr-defined]

# undeliverable: WhatsApp 131026 (Twilio SMS: accepted, then `undelivered` 30003; calls: failed)
# stop: Twilio 21610 · invalid: per-provider invalid recipient · not_rcs: RBM 404
# hard_bounce: SendGrid 202, then a `bounce` event · failed_late: WhatsApp accepted, then `failed`
PermanentKind = Literal["undeliverable", "stop", "invalid", "not_rcs", "hard_bounce", "failed_late"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Engagement(BaseModel):
    """Chances of each status webhook, drawn per ref (read/open/click/reply need delivered)."""

    model_config = ConfigDict(extra="forbid")

    delivered: Probability = 1.0
    read: Probability = 0.0  # WhatsApp, RBM
    open: Probability = 0.0  # SendGrid
    click: Probability = 0.0  # SendGrid
    reply: Probability = 0.0  # WhatsApp inbound text, RBM user text


class Faults(BaseModel):
    """The whole fault configuration; `POST /_sandbox/faults` replaces it."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    # At most this many accepted messages per rolling 1 s window; excess gets the throttle error.
    rate_limit_per_second: dict[Provider, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict
    )
    # A share of requests answered with a transient 5xx before acceptance (not recorded).
    error_rate: Probability = 0.0
    error_status: Annotated[int, Field(ge=500, le=599)] = 503
    retry_after: Annotated[int, Field(ge=0)] | None = None
    # Delay before the request is processed and answered.
    slow_ms: Annotated[int, Field(ge=0, le=600_000)] = 0
    # Accepted and recorded, then the answer is held `hang_seconds` (the client times out).
    timeout_after_accept_rate: Probability = 0.0
    hang_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # Accepted and recorded, then the connection is closed without a complete answer.
    drop_after_accept_rate: Probability = 0.0
    # Recipient (E.164, email, user id or ref, as the record shows it) → what happens to it.
    permanent: dict[str, PermanentKind] = Field(default_factory=dict)
    engagement: Engagement = Field(default_factory=Engagement)
    webhook_delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 50
    # Limit error_rate, slow_ms, timeouts and drops to these providers (None: all of them).
    providers: list[Provider] | None = None


class FaultState:
    """A `Faults` plus what applying it needs; rebuilt whenever the faults are replaced."""

    __slots__ = ("config", "rng", "windows", "_scoped", "random_faults")

    def __init__(self, config: Faults) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.windows: dict[str, deque[float]] = {p: deque() for p in config.rate_limit_per_second}
        self._scoped = frozenset(config.providers) if config.providers is not None else None
        # One flag for the hot path: skip every draw when no random fault is set.
        self.random_faults = bool(
            config.error_rate
            or config.slow_ms
            or config.timeout_after_accept_rate
            or config.drop_after_accept_rate
        )

    def applies(self, provider: str) -> bool:
        return self._scoped is None or provider in self._scoped

    def draw(self, rate: float) -> bool:
        return rate > 0.0 and self.rng.random() < rate

    def window(self, provider: str, now: float) -> deque[float] | None:
        """Accepted times of `provider` in (now - 1 s, now], or None when it is not limited."""
        window = self.windows.get(provider)
        if window is not None:
            edge = now - 1.0
            while window and window[0] <= edge:
                window.popleft()
        return window


def chance(seed: int, key: str, event: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, ref, event): the same ref gets the same
    engagement on every run, whatever the order of arrival."""
    digest = hashlib.blake2b(f"{seed}|{key}|{event}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
