"""Numbers and addresses are masked in every log line; dates, ids and counts are left alone."""

from __future__ import annotations

import logging

import pytest

from tasks.privacy import install_log_masking, mask, scrub


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("The 'To' number +34 600 111 222 is not valid", "The 'To' number ***222 is not valid"),
        ("call (555) 123-4567 today", "call ***567 today"),
        ("wa_id 34600111222 failed", "wa_id ***222 failed"),
        ("ana.garcia@example.com bounced", "a***@example.com bounced"),
        ("Outreach day 2026-11-22", "Outreach day 2026-11-22"),
        ("at 2026-11-22 05:20:07 UTC", "at 2026-11-22 05:20:07 UTC"),
        ("touch G00000001 ref 6f1d3c52-9a8e-4f0e-9b65-636164656369", None),
        ("1,274,677 rows; sent 20000 messages", None),
    ],
)
def test_scrub(text: str, masked: str | None) -> None:
    assert scrub(text) == (masked or text)


def test_mask() -> None:
    assert mask("+34600111222") == "***222"
    assert mask("Ana@Example.com") == "A***@Example.com"
    assert mask(None) == "-"


def test_every_log_record_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    install_log_masking()
    with caplog.at_level(logging.INFO):
        logging.getLogger("cadencia.deliver").info(
            "sent to %s (%s)", "+34 600 111 222", "ana@example.com"
        )
        try:
            raise ValueError("bad number +34600111222")
        except ValueError as exc:
            logging.getLogger("cadencia").warning("failed: %s", exc)
    assert caplog.messages == ["sent to ***222 (a***@example.com)", "failed: bad number ***222"]
    assert "600" not in caplog.text
