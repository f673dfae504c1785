"""Phone numbers and email addresses never reach logs, Prefect artifacts or error texts.

`mask` and `scrub` turn them into `a***@example.com` / `***222`; `install_log_masking`
makes every log record (ours, Prefect's, uvicorn's) pass its message through `scrub`, so a
provider's error text or an exception message quoting a number is masked before any handler
(console, file, Prefect's API) sees it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

EMAIL = re.compile(r"[^\s<>\"'(),;:@]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# 9 to 15 digits, optionally after "+", with single spaces, dots, dashes or brackets between
# them (never a line break); not glued to letters (ids, UUIDs), not followed by ":" (a date
# and time such as "2026-11-22 05:20") and not starting with an ISO date ("2026-11-20 23").
PHONE = re.compile(r"(?<![\w.+-])(?!\d{4}-\d{2}-\d{2})\+?\(?\d(?:[ ().-]{0,2}\d){8,14}(?![\w.:])")


def mask(value: str | None) -> str:
    """An address or number fit for logs: `a***@example.com`, `***567`."""
    if not value:
        return "-"
    value = value.strip()
    if "@" in value:
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}***@{domain}"
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-3:]}" if digits else "***"


def scrub(text: Any, limit: int | None = 300) -> str | None:
    """Free text (provider errors, bounce reasons, log lines) with addresses and numbers
    masked; cut to `limit` characters."""
    if text is None:
        return None
    out = EMAIL.sub(lambda m: mask(m.group(0)), str(text))
    out = PHONE.sub(lambda m: mask(m.group(0)), out)
    out = out.strip()
    return (out[:limit] if limit else out) or None


class _MaskedRecord(logging.LogRecord):
    def getMessage(self) -> str:  # noqa: N802 - logging's own name
        return scrub(super().getMessage(), limit=None) or ""


_installed = False


def install_log_masking() -> None:
    """Mask every log message from now on, in every logger of this process (idempotent)."""
    global _installed
    if _installed:
        return
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.__class__ = _MaskedRecord
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
