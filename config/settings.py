"""Cadencia's settings: one object, read from `CADENCIA_*` environment variables and `.env`.

Defaults are the embedded mode: a SQLite ledger in a git-ignored state directory, the bundled
sample exports, and the local provider sandbox. Secrets are `SecretStr` so that printing the
settings (or a traceback holding them) never shows their values.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SOURCES = [
    "salesforce_contacts",
    "hubspot_contacts",
    "erp_open_items",
    "events",
    "salesforce_opportunities",
    "hubspot_deals",
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CADENCIA_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    state_dir: Path = Field(
        default=Path(".cadencia"),
        description="Where the SQLite ledger, Prefect's home, quarantine files and reports live.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the ledger; default: SQLite file in the state directory.",
    )
    input_dir: Path = Field(
        default=Path("data/samples"), description="Folder holding the CRM and ERP exports."
    )
    mappings_dir: Path | None = Field(
        default=None,
        description="Extra column mappings (YAML); a file here overrides a shipped one by name.",
    )
    sources: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SOURCES),
        description="Names of the source mappings to ingest (comma-separated in the env).",
    )
    provider_mode: Literal["sandbox", "outbox", "live"] = "sandbox"
    # Scale-out (docs/scaling.md): the daily flow splits the book into this many shards by
    # account, each decided and sent by its own flow run (on Prefect workers when served).
    shards: int = Field(default=1, ge=1, le=256)
    # How many processes may send at once (workers x runs each): each keeps every provider's
    # rate limit at its share, so together they never exceed it. Above 1, a Prefect global
    # rate limit per provider (`cadencia workers setup`) is required too.
    senders: int = Field(default=1, ge=1, le=256)
    # Shards decided in this process (no shard deployment registered) run as tasks on Dask:
    # a local cluster of this many worker processes, or the scheduler at this address.
    dask_workers: int = Field(default=2, ge=1, le=256)
    dask_address: str | None = None
    timezone: str = "Europe/Madrid"
    default_region: str = Field(
        default="ES", description="Phone region used when a contact has no country."
    )

    # Where messages go. sandbox: the local provider sandbox (CADENCIA_SANDBOX_URL, or one
    # started for the push and stopped after); outbox: JSON lines under the state directory;
    # live: the real providers, with the credentials below (a missing one stops the push).
    sandbox_url: str | None = Field(
        default=None, description="A running `cadencia sandbox`; default: an embedded one."
    )
    # Public base URL of `cadencia webhooks` (status callbacks, unsubscribe links).
    webhooks_url: str | None = None

    # Who the messages come from and where people can act on them.
    company_name: str = "Cadencia Demo S.L."
    email_from: str = "cobros@example.com"
    email_from_name: str | None = "Cadencia Demo"
    support_email: str = "soporte@example.com"
    support_phone: str = "+34 910 000 000"
    pay_url: str = Field(
        default="https://pay.example.com/{account_id}",
        description="Payment link; {account_id} and {ref} are filled in per message.",
    )
    portal_url: str = "https://app.example.com"
    unsubscribe_url: str = "https://example.com/unsubscribe/{ref}"

    # Provider endpoints (defaults: the real APIs) and credentials (live mode only).
    whatsapp_api_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v21.0"
    whatsapp_phone_number_id: str | None = None
    whatsapp_access_token: SecretStr | None = None
    rbm_api_url: str = "https://rcsbusinessmessaging.googleapis.com"
    rbm_agent_id: str | None = None
    rbm_access_token: SecretStr | None = None
    twilio_api_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = Field(
        default=None, description="Sender number, or a Messaging Service SID (MG...)."
    )
    sendgrid_api_url: str = "https://api.sendgrid.com"
    sendgrid_api_key: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    salesforce_instance_url: str | None = None
    salesforce_access_token: SecretStr | None = None
    hubspot_api_url: str = "https://api.hubapi.com"
    hubspot_access_token: SecretStr | None = None
    call_webhook_url: str | None = None
    call_webhook_token: SecretStr | None = None
    in_app_url: str | None = None
    in_app_token: SecretStr | None = None

    # Key of the salted hashes kept for forgotten people (`cadencia forget`); default: a
    # random key created once in the state directory. Changing it forgets the forgetting.
    erasure_salt: SecretStr | None = None

    # Webhook verification secrets (`cadencia webhooks`).
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    rbm_client_token: SecretStr | None = None
    sendgrid_webhook_public_key: str | None = None

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Madrid'"
            ) from exc
        return value

    @property
    def ledger_url(self) -> str:
        """The ledger's SQLAlchemy URL (a secret: it may carry a password)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.state_dir / 'ledger.db').resolve()}"

    @property
    def prefect_home(self) -> Path:
        return (self.state_dir / "prefect").resolve()

    @property
    def quarantine_dir(self) -> Path:
        return (self.state_dir / "quarantine").resolve()

    @property
    def decisions_dir(self) -> Path:
        return (self.state_dir / "decisions").resolve()

    @property
    def reports_dir(self) -> Path:
        return (self.state_dir / "reports").resolve()

    @property
    def charts_dir(self) -> Path:
        return (self.state_dir / "charts").resolve()

    @property
    def outbox_dir(self) -> Path:
        return (self.state_dir / "outbox").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def settings_problem(exc: Exception) -> str:
    """One readable line per invalid setting, naming the environment variable to fix."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            f"CADENCIA_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
    return str(exc)


def masked_url(url: str) -> str:
    """A database URL fit for logs: the password replaced by ***."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
