"""The Prefect global rate limits that several senders share (one per rate-limited provider).

Created by `cadencia setup`; checked before a push with more than one sender, because a
missing limit would otherwise fail mid-send (strict) — or, without strict, silently not limit.
"""

from __future__ import annotations

import math

from config.delivery_policy import DeliveryPolicy
from tasks.deliver.connect import DeliveryConfigError
from tasks.deliver.pacing import shared_limit_name


def rate_limited(policy: DeliveryPolicy, providers: list[str] | None = None) -> dict[str, float]:
    names = providers if providers is not None else list(policy.providers)
    return {n: policy.limit(n).per_second for n in names if policy.limit(n).per_second}  # type: ignore[misc]


def ensure_shared_limits(policy: DeliveryPolicy) -> list[str]:
    """Create or update one global rate limit per rate-limited provider: `limit` slots that
    decay at the provider's rate. Returns their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    done = []
    with get_client(sync_client=True) as client:
        for provider, rate in rate_limited(policy).items():
            name = shared_limit_name(provider)
            slots = max(1, math.ceil(rate))
            try:
                client.read_global_concurrency_limit_by_name(name)
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(
                    limit=slots, slot_decay_per_second=rate, active=True))  # fmt: skip
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                    name=name, limit=slots, slot_decay_per_second=rate, active=True))  # fmt: skip
            done.append(name)
    return done


def check_shared_limits(policy: DeliveryPolicy, providers: list[str]) -> None:
    """Before several senders push: every rate-limited provider has its active shared limit."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    missing = []
    with get_client(sync_client=True) as client:
        for provider in rate_limited(policy, providers):
            try:
                found = client.read_global_concurrency_limit_by_name(shared_limit_name(provider))
                if not found.active:
                    missing.append(f"{shared_limit_name(provider)} (inactive)")
            except ObjectNotFound:
                missing.append(shared_limit_name(provider))
    if missing:
        raise DeliveryConfigError(
            f"CADENCIA_SENDERS is above 1 but the Prefect server has no shared rate limit "
            f"{', '.join(missing)}: run `cadencia setup` against it (PREFECT_API_URL), or set "
            f"CADENCIA_SENDERS=1 for a single sender."
        )
