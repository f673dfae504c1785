"""The results report's settings (config/report.yaml): reporting currency and rates."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field, field_validator

from config.outreach_policy import _Strict, load_yaml_model

REPORT_FILE = Path(__file__).resolve().parent / "report.yaml"


class ReportPolicy(_Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    rates: dict[str, float]
    promise_grace_days: int = Field(default=3, ge=0)
    promise_kept_share: float = Field(default=0.95, gt=0, le=1)

    @field_validator("rates")
    @classmethod
    def _positive(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = sorted(code for code, rate in rates.items() if rate <= 0)
        if bad:
            raise ValueError(f"rates must be positive: {', '.join(bad)}")
        return rates


def load_report_policy(path: Path = REPORT_FILE) -> ReportPolicy:
    return load_yaml_model(path, ReportPolicy)


@cache
def report_policy() -> ReportPolicy:
    return load_report_policy()
