"""The outreach policy (config/outreach.yaml): stages, cadences, consent, caps, calendar.

Validated before any work. A mistake stops the run with the file, the line and the problem,
because a wrong cap or a misspelt channel would otherwise send (or hold) real messages.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.contacts_policy import PolicyError

M = TypeVar("M", bound=BaseModel)
OUTREACH_FILE = Path(__file__).resolve().parent / "outreach.yaml"
Channel = Literal["email", "whatsapp", "sms", "rcs", "voice", "in_app"]
Purpose = Literal["service", "marketing"]
Basis = Literal["granted", "not_denied"]
Engagement = Literal["opened", "clicked", "read", "replied", "interacted"]
Trigger = Literal["promise_to_pay", "broken_promise", "dispute", "call_connected"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CHANNELS: tuple[str, ...] = ("email", "whatsapp", "sms", "rcs", "voice", "in_app")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Stage(_Strict):
    name: str
    start: int = Field(alias="from")
    end: int | None = Field(default=None, alias="to")


class Aging(_Strict):
    stages: list[Stage]
    report_buckets: list[int] = Field(default_factory=lambda: [30, 60, 90])
    paid_tolerance: float = Field(default=1.0, ge=0)

    @field_validator("stages")
    @classmethod
    def _ordered(cls, stages: list[Stage]) -> list[Stage]:
        if not stages:
            raise ValueError("at least one stage is needed")
        for before, after in zip(stages, stages[1:], strict=False):
            if before.end is None or after.start != before.end + 1:
                raise ValueError(
                    f"stage '{after.name}' must start the day after '{before.name}' ends "
                    "(stages are ordered, contiguous and do not overlap)"
                )
        for stage in stages:
            if stage.end is not None and stage.end < stage.start:
                raise ValueError(f"stage '{stage.name}' ends before it starts")
        return stages


class HighValue(_Strict):
    default: float = Field(gt=0)
    per_currency: dict[str, float] = Field(default_factory=dict)


class Segments(_Strict):
    high_value: HighValue
    customer_types: dict[str, list[str]] = Field(default_factory=dict)


class Cases(_Strict):
    renewal_opens_days_before: int = Field(default=45, ge=0)
    promise_grace_days: int = Field(default=3, ge=0)
    dispute_pause_days: int = Field(default=30, ge=0)
    trigger_within_days: int = Field(default=7, ge=0)


class Holdout(_Strict):
    """A control group: this share of cases, chosen by a hash of the case key, gets no
    automated touch, so the report can show what the outreach changed (the lift)."""

    share: float = Field(default=0.0, ge=0, le=0.5)
    seed: str = Field(default="cadencia-holdout", min_length=1)


class ChannelCap(_Strict):
    channel: Channel
    purpose: Literal["service", "marketing", "any"] = "any"
    max: int = Field(ge=0)


class Caps(_Strict):
    per_contact_per_day: int = Field(ge=1)
    per_contact_per_week: int = Field(ge=1)
    max_channels_per_day: int = Field(ge=1, le=6)
    min_gap_hours: float = Field(ge=0, le=12)  # a gap never spans a night
    per_channel_week: list[ChannelCap] = Field(default_factory=list)
    separate_purposes: bool = False


class Window(_Strict):
    start: dt.time
    end: dt.time

    @model_validator(mode="after")
    def _forward(self) -> Window:
        if self.end <= self.start:
            raise ValueError("the window must end after it starts, on the same day")
        return self


class Calendar(_Strict):
    business_days: list[Weekday]
    message_window: Window
    call_window: Window
    public_holidays: bool = True
    max_defer_days: int = Field(default=10, ge=1, le=60)


class InApp(_Strict):
    active_within_days: int = Field(default=3, ge=0)


class Affinity(_Strict):
    priors: dict[Channel, float]
    prior_weight: float = Field(gt=0)
    half_life_days: float = Field(gt=0)
    min_messages: int = Field(ge=1)
    min_channels: int = Field(ge=1)


class Step(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    day: int = Field(default=0, ge=0)
    day_by_segment: dict[str, int] = Field(default_factory=dict)
    when: dict[Engagement, bool] = Field(default_factory=dict)
    channels: list[Channel] = Field(min_length=1)
    template: str
    purpose: Purpose
    assignee: str | None = None
    # Urgent service steps keep their channel order; the others follow channel affinity.
    urgent: bool = False

    @field_validator("channels")
    @classmethod
    def _distinct(cls, channels: list[str]) -> list[str]:
        if len(set(channels)) != len(channels):
            raise ValueError("a channel is listed twice")
        return channels


class TriggerStep(Step):
    event: Trigger


class StageCadence(_Strict):
    repeat_every: int | None = Field(default=None, ge=1)
    steps: list[Step]


class Cadence(_Strict):
    case: Literal["renewal", "collections"]
    recipients: Literal["renewals", "collections"]
    stop_on: list[Engagement] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)  # single-stage cadences (renewal)
    stages: dict[str, StageCadence] = Field(default_factory=dict)
    triggers: list[TriggerStep] = Field(default_factory=list)

    @field_validator("stages", mode="before")
    @classmethod
    def _list_is_steps(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"steps": v} if isinstance(v, list) else v for k, v in value.items()}
        return value


class OutreachPolicy(_Strict):
    aging: Aging
    segments: Segments
    cases: Cases = Field(default_factory=Cases)
    holdout: Holdout = Field(default_factory=Holdout)
    consent: dict[Channel, dict[Purpose, Basis]]
    caps: Caps
    calendar: Calendar
    in_app: InApp = Field(default_factory=InApp)
    affinity: Affinity
    call_queues: dict[str, str] = Field(default_factory=dict)
    cadences: dict[str, Cadence]

    @model_validator(mode="after")
    def _coherent(self) -> OutreachPolicy:
        missing = [(c, p) for c in CHANNELS for p in ("service", "marketing")
                   if p not in self.consent.get(c, {})]  # fmt: skip
        if missing:
            raise ValueError(f"consent: no rule for {', '.join(f'{c}/{p}' for c, p in missing)}")
        stage_names = {s.name for s in self.aging.stages}
        kinds = [c.case for c in self.cadences.values()]
        for kind in set(kinds):
            if kinds.count(kind) > 1:
                raise ValueError(f"cadences: two cadences for {kind} cases")
        names: set[str] = set()
        for cadence_name, cadence in self.cadences.items():
            unknown = sorted(set(cadence.stages) - stage_names)
            if unknown:
                raise ValueError(
                    f"cadences.{cadence_name}: unknown stage(s) {unknown}; "
                    f"aging.stages defines {sorted(stage_names)}"
                )
            for step in self.steps_of(cadence):
                if step.name in names:
                    raise ValueError(f"cadences: step name '{step.name}' is used twice")
                names.add(step.name)
                extra = sorted(set(step.day_by_segment) - self.segment_names)
                if extra:
                    raise ValueError(
                        f"step '{step.name}': unknown segment(s) {extra}; "
                        f"known: {sorted(self.segment_names)}"
                    )
        return self

    @property
    def segment_names(self) -> set[str]:
        return {"high_value", *self.segments.customer_types}

    @staticmethod
    def steps_of(cadence: Cadence) -> list[Step]:
        steps = [*cadence.steps, *cadence.triggers]
        for stage in cadence.stages.values():
            steps.extend(stage.steps)
        return steps

    def cadence_for(self, kind: str) -> Cadence | None:
        return next((c for c in self.cadences.values() if c.case == kind), None)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The YAML line of the value a pydantic error location points at (1-based)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next(
                (v for k, v in node.value if str(k.value) == str(part) or _alias(k, part)), None
            )
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        else:
            child = None
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _alias(key: yaml.Node, part: Any) -> bool:
    return {"start": "from", "end": "to"}.get(str(part)) == key.value


def load_outreach_policy(path: Path = OUTREACH_FILE) -> OutreachPolicy:
    return load_yaml_model(path, OutreachPolicy)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """A YAML settings file validated by `model`; any problem is a PolicyError with the file,
    the line and the field, so the user knows exactly what to fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        root = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise PolicyError(f"{path}:{where} {problem}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping of settings at the top level")
    try:
        return model(**raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p not in ("function-after", "list[Step]"))
            line = _line_of(root, loc)
            where = f"line {line}: " if line else ""
            field = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{where}{field}: {err['msg'].removeprefix('Value error, ')}")
        raise PolicyError(f"{path}: " + "; ".join(problems)) from None


@cache
def outreach_policy() -> OutreachPolicy:
    return load_outreach_policy()
