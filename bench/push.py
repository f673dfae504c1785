"""Delivery throughput against the provider sandbox (a separate process, like a real API).

1. limited: WhatsApp at 80 msg/s, the sandbox enforcing 80/s: achieved rate and rate-limit
   errors (targets: >= 95% of the limit, zero errors);
2. unlimited: messages per second end to end (claim, render, send, record on SQLite);
3. bare: a plain httpx loop (same concurrency) against the same sandbox, for comparison.

    .venv/bin/python bench/push.py [--limited 2400] [--unlimited 20000] [--bare 20000]
                                   [--senders 2]

The unlimited push also runs with several sender processes sharing one ledger (the claims
split the work; the sandbox's record shows nothing is sent twice).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.delivery_policy import Limit, delivery_policy  # noqa: E402
from config.settings import Settings  # noqa: E402
from tasks.deliver.push import push_due  # noqa: E402
from tasks.deliver.templates import Catalogue  # noqa: E402
from tasks.ledger.db import engine_for, migrate  # noqa: E402
from tasks.sample_data.due_touches import seed_due_touches  # noqa: E402

CONCURRENCY = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    """`python -m sandbox` in its own process, without webhooks."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(self.port), "--no-webhooks"],
            cwd=Path(__file__).resolve().parents[1],
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/_sandbox/health", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("sandbox did not start")

    def faults(self, **faults: object) -> None:
        httpx.post(f"{self.url}/_sandbox/reset").raise_for_status()
        httpx.post(f"{self.url}/_sandbox/faults", json=faults).raise_for_status()

    def summary(self) -> dict:
        return httpx.get(f"{self.url}/_sandbox/summary").json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _push_once(url: str, sandbox_url: str, per_second: float | None) -> int:
    """One sender: push everything due from the ledger at `url`; returns messages sent."""
    engine = engine_for(url)
    limit = Limit(per_second=per_second, burst=8 if per_second else None, concurrency=CONCURRENCY)
    policy = delivery_policy()
    policy = policy.model_copy(
        update={"providers": {**policy.providers, "whatsapp": limit}, "batch_size": 2000}
    )
    folder = Path(url.removeprefix("sqlite:///")).parent
    settings = Settings(state_dir=folder, webhooks_url="http://127.0.0.1:9")
    report = push_due(engine, settings, policy, Catalogue.load(), sandbox_url)
    return report.table()[0]["sent"] if report.table() else 0


def push(sandbox: Sandbox, n: int, per_second: float | None, senders: int = 1) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="cadencia-push-"))
    url = f"sqlite:///{folder / 'ledger.db'}"
    migrate(url)
    seed_due_touches(engine_for(url), n, ("whatsapp",))
    started = time.perf_counter()
    if senders == 1:
        sent = _push_once(url, sandbox.url, per_second)
    else:  # several sender processes share the work through the ledger's claims
        rate = "none" if per_second is None else str(per_second)
        procs = [
            subprocess.Popen([sys.executable, __file__, "--sender", url, sandbox.url, rate],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(senders)
        ]  # fmt: skip
        sent = sum(int(p.communicate()[0].strip().splitlines()[-1]) for p in procs)
    seconds = time.perf_counter() - started
    summary = sandbox.summary()
    rejected = summary["rejected"].get("whatsapp", {})
    stamps = sorted(m["at"] for m in httpx.get(f"{sandbox.url}/_sandbox/messages",
                                               params={"provider": "whatsapp"}).json())  # fmt: skip
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "messages": n,
        "senders": senders,
        "sent": sent,
        "seconds": round(seconds, 2),
        "per_second": round(n / seconds, 1),
        # The provider's view: accepted messages over the time from the first to the last.
        "sending_per_second": round((len(stamps) - 1) / span, 1) if span else None,
        "rate_limited": rejected.get("rate_limited", 0),
        "max_in_any_second": summary["max_per_second"].get("whatsapp"),
        "duplicates": summary["duplicates"].get("whatsapp", 0),
    }


async def bare(url: str, n: int) -> dict:
    """The floor: the same requests from a plain httpx loop, no ledger, no templates."""
    body = {"messaging_product": "whatsapp", "to": "34600000000", "type": "template",
            "template": {"name": "payment_reminder", "language": {"code": "es"}}}  # fmt: skip
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int) -> None:
            async with slots:
                payload = {**body, "biz_opaque_callback_data": f"bare-{i}"}
                r = await client.post(f"{url}/v21.0/1/messages", json=payload,
                                      headers={"Authorization": "Bearer x"})  # fmt: skip
                r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        seconds = time.perf_counter() - started
    return {"messages": n, "seconds": round(seconds, 2), "per_second": round(n / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limited", type=int, default=2400)
    parser.add_argument("--unlimited", type=int, default=20000)
    parser.add_argument("--bare", type=int, default=20000)
    parser.add_argument("--senders", type=int, default=2, help="also run this many senders")
    parser.add_argument("--sender", nargs=3, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.sender:
        url, sandbox_url, rate = args.sender
        print(_push_once(url, sandbox_url, None if rate == "none" else float(rate)))
        return
    sandbox = Sandbox()
    results: dict[str, dict] = {}
    try:
        if args.limited:
            sandbox.faults(rate_limit_per_second={"whatsapp": 80})
            results["limited_80"] = push(sandbox, args.limited, 80)
            results["limited_80"]["share_of_limit"] = round(
                results["limited_80"]["sending_per_second"] / 80, 3
            )
        if args.unlimited:
            sandbox.faults()
            results["unlimited"] = push(sandbox, args.unlimited, None)
            if args.senders > 1:
                sandbox.faults()
                results[f"unlimited_{args.senders}_senders"] = push(
                    sandbox, args.unlimited, None, args.senders
                )
        if args.bare:
            sandbox.faults()
            results["bare_httpx"] = asyncio.run(bare(sandbox.url, args.bare))
    finally:
        sandbox.stop()
    results["cpu_count"] = os.cpu_count()  # type: ignore[assignment]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
