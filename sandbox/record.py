"""What the sandbox saw: every accepted message, every rejection by reason, webhook outcomes.

Appends to plain lists and counters on the hot path; anything costlier (duplicates by ref,
the busiest second) is worked out when the summary is asked for.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import IO, Any

import orjson


class Record:
    def __init__(self, path: str | Path | None = None) -> None:
        self.entries: list[dict[str, Any]] = []
        self.times: defaultdict[str, list[float]] = defaultdict(list)
        self.ref_counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.rejected: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.webhooks_sent: Counter[str] = Counter()
        self.webhooks_failed: Counter[str] = Counter()
        self._file: IO[bytes] | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = Path(path).open("ab")  # noqa: SIM115 (open for the whole run)

    def accept(
        self, provider: str, ref: str | None, provider_id: str, to: str, at: float, request: Any
    ) -> dict[str, Any]:
        entry = {
            "seq": len(self.entries) + 1,
            "provider": provider,
            "ref": ref,
            "provider_id": provider_id,
            "to": to,
            "at": at,
            "request": request,
        }
        self.entries.append(entry)
        self.times[provider].append(at)
        if ref is not None:
            self.ref_counts[provider][ref] += 1
        if self._file is not None:
            self._file.write(orjson.dumps(entry) + b"\n")
            self._file.flush()  # a tail -f or a crash sees every accepted message
        return entry

    def reject(self, provider: str, reason: str) -> None:
        self.rejected[provider][reason] += 1

    def messages(self, provider: str | None = None, ref: str | None = None) -> list[dict]:
        return [
            e
            for e in self.entries
            if (provider is None or e["provider"] == provider) and (ref is None or e["ref"] == ref)
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": {p: len(t) for p, t in self.times.items() if t},
            "duplicates": {
                p: sum(1 for n in counts.values() if n > 1) for p, counts in self.ref_counts.items()
            },
            "rejected": {p: dict(reasons) for p, reasons in self.rejected.items() if reasons},
            "max_per_second": {p: max_in_window(t) for p, t in self.times.items() if t},
            "webhooks_sent": dict(self.webhooks_sent),
            "webhooks_failed": dict(self.webhooks_failed),
        }

    def clear(self) -> None:
        self.entries.clear()
        self.times.clear()
        self.ref_counts.clear()
        self.rejected.clear()
        self.webhooks_sent.clear()
        self.webhooks_failed.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """Most timestamps in any window (t - width, t]: the same window the rate limiter keeps,
    so an accepted count never exceeds a configured limit."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        edge = t - width
        while ordered[start] <= edge:
            start += 1
        best = max(best, end - start + 1)
    return best
