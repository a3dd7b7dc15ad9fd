"""Settings: environment variables `OPENCX_*`, then an optional `opencx.toml`, then defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_BLOCKED_VALUES: tuple[str, ...] = (
    r"^[0-]*$",
    r"^-1$",
    r"^null$",
    r"^none$",
    r"^undefined$",
    r"^anonymous$",
    r"^nil$",
    r"^n/?a$",
    r"^unknown$",
    r"^test@test\.com$",
)


class IdentitySettings(BaseSettings):
    """Merge rules of identity resolution (see docs/architecture.md, Identity)."""

    model_config = SettingsConfigDict(extra="forbid")

    priority: list[str] = Field(
        default=["user_id", "email", "phone", "account_number", "anonymous_id"],
        description="Identifier kinds from most to least trusted; on a conflict the "
        "lowest-priority identifier of the event is dropped first.",
    )
    limits: dict[str, int] = Field(
        default={"user_id": 1},
        description="Most values of a kind one profile may hold (unlisted kinds: default_limit).",
    )
    default_limit: int = Field(default=5, ge=1, description="Limit for kinds not in `limits`.")
    blocked_values: list[str] = Field(
        default=list(DEFAULT_BLOCKED_VALUES),
        description="Regular expressions (case-insensitive, matched against the normalised "
        "value) of values that never link anything.",
    )
    external_ids: list[str] = Field(
        default=["account_number"],
        description="Trait/property names that are identifiers of their own kind.",
    )


class SmtpSettings(BaseSettings):
    """The mail server the email adapter of the outbox hands messages to."""

    model_config = SettingsConfigDict(extra="forbid")

    host: str = Field(default="", description="SMTP server; empty: email is not delivered.")
    port: int = Field(default=25, ge=0, le=65535, description="SMTP port (587 with STARTTLS).")
    starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    username: str = Field(default="", description="Login name; empty: no login.")
    password: str = Field(default="", description="Login password.")
    sender: str = Field(default="", description="From address of every message.")
    timeout_s: float = Field(default=10.0, gt=0, description="Connection and command timeout.")


class Settings(BaseSettings):
    """Everything OpenCX can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="OPENCX_",
        env_nested_delimiter="__",
        toml_file="opencx.toml",
        extra="ignore",
    )

    db: Path = Field(default=Path("opencx.duckdb"), description="DuckDB database file.")
    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port the server listens on.")
    default_region: str = Field(
        default="US", description="Region for phone numbers written without a country code."
    )
    cors_origins: list[str] = Field(
        default=[], description="Origins allowed to send events from a browser (CORS)."
    )
    max_event_bytes: int = Field(default=32 * 1024, description="Largest single event.")
    max_batch_bytes: int = Field(default=500 * 1024, description="Largest request body.")
    max_batch_events: int = Field(default=2500, description="Most events in one batch.")
    flush_events: int = Field(default=5000, description="Group commit: flush after N events.")
    flush_ms: int = Field(default=20, description="Group commit: or after M milliseconds.")
    max_queued_events: int = Field(
        default=200_000, description="Past this backlog the API answers 429 with Retry-After."
    )
    profiles_refresh_s: float = Field(
        default=30.0, description="How often the server refreshes the profiles summary table."
    )
    public_url: str = Field(
        default="",
        description="Base URL of this server as customers reach it (links in survey emails); "
        "empty: the URL the request came in on.",
    )
    survey_wait_days: float = Field(
        default=7, ge=0, description="Global waiting time between any two survey invitations."
    )
    case_sla_hours: dict[str, float] = Field(
        default={"high": 24, "normal": 72},
        description="Time to resolve a closed-loop case, by priority.",
    )
    case_queue: str = Field(default="customer-care", description="Queue new cases go to.")
    contact_costs: dict[str, float] = Field(
        default={"phone": 6.0, "chat": 2.5, "store": 4.0, "email": 0.05, "sms": 0.03},
        description="What one contact costs on each channel (cost to serve, profitability).",
    )
    voc_every_s: float = Field(
        default=60.0,
        ge=0,
        description="How often the server sends due survey invitations and opens cases for "
        "new answers (0: never).",
    )
    segments_every_s: float = Field(
        default=3600.0,
        ge=0,
        description="How often the server refreshes saved segments' members and the effort "
        "traits of every profile (0: never; on demand with `opencx segments refresh`).",
    )
    orchestrate_every_s: float = Field(
        default=10.0,
        ge=0,
        description="How often the server runs triggers, releases held contacts and delivers "
        "the outbox (0: never).",
    )
    webhook_secret: str = Field(
        default="",
        description="Key of the HMAC-SHA256 signature on every outgoing webhook; empty: "
        "webhook actions are refused.",
    )
    delivery_max_attempts: int = Field(
        default=8, ge=1, description="Attempts before an outbox message is dead-lettered."
    )
    delivery_backoff_s: float = Field(
        default=30.0, gt=0, description="First retry delay; doubles on each attempt."
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `opencx.toml`, with explicit overrides on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
