"""Push what is due: settle leftovers, check templates, then per channel claim → render →
send → record, until nothing due is left. Used by the daily flow right after the plan and by
the dispatch flow on a short interval; both get the same exactly-once guarantees because the
ledger's claim, not the caller, decides who sends a touch.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from config.delivery_policy import DeliveryPolicy
from config.settings import Settings
from tasks.deliver.connect import IDEMPOTENT, DeliveryConfigError, build_providers, provider_for
from tasks.deliver.messages import build_messages
from tasks.deliver.pacing import Pace, SharedGate, share
from tasks.deliver.providers.base import Provider, Result
from tasks.deliver.sender import send_batch
from tasks.deliver.templates import Catalogue, locale_for
from tasks.ledger import delivery as ledger
from tasks.ledger.models import utcnow
from tasks.privacy import scrub

logger = logging.getLogger("cadencia.deliver")
Clock = Callable[[], dt.datetime]
Progress = Callable[[int, int], None]
COUNTED = ("sent", "failed", "unknown", "fell_back", "retry_later")


@dataclass
class PushReport:
    """What one push did, per channel, plus the housekeeping before it."""

    by_channel: dict[str, Counter] = field(default_factory=dict)
    housekeeping: dict[str, int] = field(default_factory=dict)
    deferred: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, channel: str, what: str, n: int = 1) -> None:
        self.by_channel.setdefault(channel, Counter())[what] += n

    @property
    def messages(self) -> int:
        return sum(c[k] for c in self.by_channel.values() for k in ("sent", "failed", "unknown"))

    def table(self) -> list[dict[str, Any]]:
        channels = sorted(set(self.by_channel) | set(self.deferred))
        return [
            {
                "channel": ch,
                **{k: int(self.by_channel.get(ch, Counter())[k]) for k in COUNTED},
                "deferred": int(self.deferred.get(ch, 0)),
            }  # fmt: skip
            for ch in channels
        ]

    def summary(self) -> dict[str, Any]:
        return {"channels": self.table(), "housekeeping": self.housekeeping,
                "messages": self.messages, "seconds": round(self.seconds, 2)}  # fmt: skip


def check_templates(
    engine: sa.Engine, catalogue: Catalogue, policy: DeliveryPolicy, now: dt.datetime
) -> set[str]:
    """Every template variant and locale due now exists and renders: otherwise stop before
    anything is claimed. Returns the providers the due touches need."""
    due = ledger.due_variants(engine, now)
    needed: set[tuple[str, str, str]] = set()
    providers: set[str] = set()
    for template, channel, _purpose, language, country in due.itertuples(index=False):
        provider = provider_for(channel, template, policy)
        providers.add(provider)
        variant = "voice_auto" if provider == "twilio_calls" else channel
        needed.add((template, variant, locale_for(language, country)))
    problems = catalogue.check(sorted(needed))
    if problems:
        raise DeliveryConfigError(
            "templates are not ready, nothing was sent:\n  " + "\n  ".join(problems)
        )
    return providers


def push_due(
    engine: sa.Engine,
    settings: Settings,
    policy: DeliveryPolicy,
    catalogue: Catalogue,
    sandbox_url: str | None,
    clock: Clock = utcnow,
    progress: Progress | None = None,
) -> PushReport:
    started = time.perf_counter()
    report = PushReport()
    now = clock()
    report.housekeeping = ledger.housekeeping(
        engine, now, policy.validity_hours, policy.claim_lease_seconds,
        policy.unknown_expire_hours, IDEMPOTENT,
    )  # fmt: skip
    needed = check_templates(engine, catalogue, policy, now)
    if needed:
        total = sum(ledger.due_counts(engine, now).values())
        providers = build_providers(settings, policy, needed, sandbox_url)
        if settings.senders > 1:
            from tasks.deliver.shared_limits import check_shared_limits

            check_shared_limits(policy, list(providers))
        # Everything alive now (pandas, SQLAlchemy, Prefect...) is exempt from the cycle
        # collector while we send: a full collection of it stalls the event loop ~100 ms,
        # long enough to bunch requests past a provider's per-second limit.
        gc.freeze()
        pushing = _push(engine, settings, policy, catalogue, providers, sandbox_url, clock,
                        report, _Progress(total, progress))  # fmt: skip
        try:
            asyncio.run(pushing)
        finally:
            gc.unfreeze()
    report.deferred = ledger.due_counts(engine, clock(), later=True)
    report.seconds = time.perf_counter() - started
    return report


class _Progress:
    def __init__(self, total: int, callback: Progress | None) -> None:
        self.total, self.done, self.callback = total, 0, callback

    def __call__(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(self.done, self.total)


async def _push(
    engine: sa.Engine,
    settings: Settings,
    policy: DeliveryPolicy,
    catalogue: Catalogue,
    providers: dict[str, Provider],
    sandbox_url: str | None,
    clock: Clock,
    report: PushReport,
    progress: _Progress,
) -> None:
    paces = {name: pace_for(name, policy, settings.senders) for name in providers}
    stalled: set[str] = set()
    try:
        # Rounds: fallbacks created in one round are due at once, maybe on another channel.
        while True:
            ledger.cancel_blocked(engine, clock())  # opt-outs and holds since the last round
            due = ledger.due_variants(engine, clock())
            pairs = zip(due["template"], due["channel"], strict=True)
            wanted = {(c, provider_for(c, t, policy)) for t, c in pairs}
            channels = [c for c in policy.channels
                        if any(w[0] == c for w in wanted) and c not in stalled]  # fmt: skip
            if not channels:
                break
            missing = {p for _c, p in wanted} - set(providers)
            if missing:  # a fallback onto a channel nobody needed at the start
                providers.update(build_providers(settings, policy, missing, sandbox_url))
                paces.update({name: pace_for(name, policy, settings.senders) for name in missing})
            loops = [
                _channel_loop(engine, settings, policy, catalogue, providers, paces, channel,
                              clock, report, progress)
                for channel in channels
            ]  # fmt: skip
            # Every loop finishes (and records what it sent) even when a sibling fails.
            results = await asyncio.gather(*loops, return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
            stalled |= {c for c, (gave_up, _n) in zip(channels, results, strict=True) if gave_up}
            if not any(n for _g, n in results):  # nothing claimable (e.g. past validity)
                break
    finally:
        for provider in providers.values():
            with contextlib.suppress(Exception):  # closing must not hide the push's outcome
                await provider.aclose()


def pace_for(provider: str, policy: DeliveryPolicy, senders: int) -> Pace:
    """This process's pace for `provider`: its share of the rate limit, and with other
    senders the shared Prefect limit on top (a quarter of a second's share per call)."""
    limit = share(policy.limit(provider), senders)
    if senders <= 1 or limit.per_second is None:
        return Pace(limit)
    return Pace(limit, SharedGate(provider, step=int(limit.per_second / 4)))


def _chunk(policy: DeliveryPolicy, provider: str) -> int:
    """Claim about five seconds of work at the provider's pace: a crash strands little."""
    rate = policy.limit(provider).per_second
    return policy.batch_size if rate is None else max(10, min(policy.batch_size, int(rate * 5)))


async def _channel_loop(
    engine: sa.Engine,
    settings: Settings,
    policy: DeliveryPolicy,
    catalogue: Catalogue,
    providers: dict[str, Provider],
    paces: dict[str, Pace],
    channel: str,
    clock: Clock,
    report: PushReport,
    progress: _Progress,
) -> tuple[bool, int]:
    """Claim, send and record chunks of one channel until none is due. Returns (gave up?,
    touches claimed): giving up means a provider kept refusing or is not available, and the
    rest waits for the next dispatch."""
    automated = list(policy.automated_calls) if channel == "voice" else []
    # Lanes: the channel's provider (for voice: people's call tasks), and automated calls.
    lanes: list[tuple[str, list[str], list[str] | None]] = [
        (policy.channels[channel], automated, None)
    ]
    if automated:
        lanes.append(("twilio_calls", [], automated))
    gave_up, claimed = False, 0
    hours = policy.validity(channel)
    for provider, exclude, only in lanes:
        if provider not in providers:
            gave_up = True  # its touches wait: nobody can send them in this push
            continue
        size = _chunk(policy, provider)

        def claim_next(
            provider: str = provider, exclude: list[str] = exclude,
            only: list[str] | None = only, size: int = size,
        ) -> Any:  # fmt: skip
            return asyncio.to_thread(ledger.claim, engine, channel, provider, clock(), size,
                                     hours, exclude, only)  # fmt: skip

        # Unlimited providers are pipelined: the next chunk is claimed and the last one
        # recorded while this one is on the wire. Rate-limited ones are not (the database
        # work is small next to their pace, and threads holding the GIL mid-chunk would
        # jitter the departures the provider counts).
        pipelined = policy.limit(provider).per_second is None
        upcoming: asyncio.Future | None = asyncio.ensure_future(claim_next())
        recording: list[asyncio.Future] = []
        try:
            while upcoming is not None:
                token, rows = await upcoming
                upcoming = None
                if not rows:
                    break
                claimed += len(rows)
                if pipelined:
                    upcoming = asyncio.ensure_future(claim_next())
                stalled, record = await _send_claimed(
                    engine, settings, policy, catalogue, providers, paces, rows, token, clock,
                    report, progress,
                )  # fmt: skip
                if pipelined:
                    recording.append(asyncio.ensure_future(record))
                else:
                    await record
                if stalled:  # the provider keeps refusing: the rest waits for the next dispatch
                    gave_up = True
                    break
                if not pipelined:
                    upcoming = asyncio.ensure_future(claim_next())
        finally:
            # A prefetched chunk nobody sent goes back to `planned` (also after an error).
            if upcoming is not None:
                token, _rows = await upcoming
                await asyncio.to_thread(ledger.release, engine, token)
            await asyncio.gather(*recording)
    return gave_up, claimed


async def _send_claimed(
    engine: sa.Engine,
    settings: Settings,
    policy: DeliveryPolicy,
    catalogue: Catalogue,
    providers: dict[str, Provider],
    paces: dict[str, Pace],
    rows: list[dict[str, Any]],
    token: str,
    clock: Clock,
    report: PushReport,
    progress: _Progress,
) -> tuple[bool, Awaitable[None]]:
    """Render and send one claimed chunk; returns (gave up?, the write of its outcomes, to
    be awaited: the caller overlaps it with the next chunk)."""
    provider_of = {r["id"]: provider_for(r["channel"], r["template"], policy) for r in rows}
    voice_cases = sorted({r["case_key"] for r in rows if r["channel"] == "voice" and r["case_key"]})
    histories = await asyncio.to_thread(ledger.last_touches, engine, voice_cases)
    ready, unsendable = build_messages(rows, provider_of, catalogue, settings, histories)
    results = await send_batch(ready, providers, paces, policy.retries, on_done=progress)
    by_id = {r["id"]: r for r in rows}
    outcomes: list[ledger.Outcome] = []
    fallbacks: list[dict[str, Any]] = []
    suppressions: list[dict[str, Any]] = []
    stalled = False
    now = clock()
    for item in unsendable:
        row = by_id[item.touch_id]
        outcomes.append(ledger.Outcome(item.touch_id, "failed", None, None, item.reason, item.code))
        report.add(row["channel"], "failed")
        if item.code == "address" and _fallback(row, policy):
            fallbacks.append(ledger.fallback_touch(row, now))
            report.add(row["channel"], "fell_back")
    for (message, provider), (result, _attempts) in zip(ready, results, strict=True):
        row = by_id[message.touch_id]
        status = _status(result, int(row["attempts"]), policy)
        if status == "planned":
            stalled = True
            report.add(message.channel, "retry_later")
        else:
            report.add(message.channel, status)
        # Provider prose may quote the number or address: masked before it is stored.
        detail = None if result.outcome == "sent" else scrub(result.detail or result.code)
        if status == "failed" and result.outcome == "retryable":
            detail = f"gave up after {int(row['attempts'])} pushes: {detail}"
        outcomes.append(ledger.Outcome(message.touch_id, status, provider, result.provider_id,
                                       detail, result.code))  # fmt: skip
        if result.outcome == "permanent":
            if result.suppress and row["golden_id"]:
                suppressions.append({"golden_id": row["golden_id"], "channel": message.channel,
                                     "reason": result.suppress, "since": now,
                                     "touch_id": message.touch_id})  # fmt: skip
            if result.fall_back and _fallback(row, policy):
                fallbacks.append(ledger.fallback_touch(row, now))
                report.add(message.channel, "fell_back")
    if suppressions and fallbacks:  # never fall back onto a channel just suppressed
        blocked = {(x["golden_id"], x["channel"]) for x in suppressions}
        fallbacks = [f for f in fallbacks if (f["golden_id"], f["channel"]) not in blocked]
    if any(r.stall for r, _n in results):
        first = next(r for r, _n in results if r.stall)
        logger.error("%s refused our credentials (%s): its touches wait for the next push",
                     ready[0][1], first.detail or first.code)  # fmt: skip
    record = asyncio.to_thread(
        ledger.record_outcomes, engine, token, outcomes, now,
        pd.DataFrame(fallbacks) if fallbacks else None,
        pd.DataFrame(suppressions) if suppressions else None,
    )  # fmt: skip
    return stalled, record


def _status(result: Result, pushes: int, policy: DeliveryPolicy) -> str:
    if result.stall:  # our side is broken (credentials): the touch is not to blame
        return "planned"
    if result.outcome == "sent":
        return "sent"
    if result.outcome == "ambiguous":
        return "unknown"
    if result.outcome == "retryable":
        return "planned" if pushes < policy.retries.max_pushes else "failed"
    return "failed"


def _fallback(row: dict[str, Any], policy: DeliveryPolicy) -> bool:
    return bool(policy.fallback_on_permanent and isinstance(row["fallback_channel"], str))
