"""The contacts policy (config/contacts.yaml), validated so a mistake stops before any work."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CONTACTS_FILE = Path(__file__).resolve().parent / "contacts.yaml"
Channel = Literal["email", "whatsapp", "sms", "rcs", "voice", "in_app"]
Purpose = Literal["service", "marketing"]
State = Literal["granted", "denied"]


class PolicyError(Exception):
    """The policy file is wrong; the message names the file, the place and the problem."""


class Identity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_cluster_size: int = Field(default=8, ge=2, le=1000)
    source_priority: list[str] = Field(default_factory=lambda: ["salesforce", "hubspot"])


class RoleTier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crm_roles: list[str] | None = None
    title_pattern: str | None = None
    role_address: bool = False
    any: bool = False

    @field_validator("title_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"title_pattern is not a valid regular expression: {exc}"
                ) from None
        return value


class Roles(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collections: list[RoleTier]
    renewals: list[RoleTier]


class ContactsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role_local_parts: list[str]
    common_domains: list[str]
    identity: Identity = Field(default_factory=Identity)
    consent_fields: dict[str, dict[bool, list[tuple[Channel, Purpose, State]]]]
    roles: Roles

    @field_validator("consent_fields")
    @classmethod
    def _known_fields(cls, value: dict) -> dict:
        known = {"email_opt_out", "email_opt_in", "whatsapp_opt_in", "sms_opt_in",
                 "marketing_opt_in", "do_not_call"}  # fmt: skip
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown consent field(s) {unknown}; known: {sorted(known)}")
        return value


def load_contacts_policy(path: Path = CONTACTS_FILE) -> ContactsPolicy:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{path}:{where} is not valid YAML") from None
    try:
        return ContactsPolicy(**(raw or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise PolicyError(f"{path}: {problems}") from None


@cache
def contacts_policy() -> ContactsPolicy:
    return load_contacts_policy()
