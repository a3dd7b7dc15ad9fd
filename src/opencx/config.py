"""Settings: environment variables `OPENCX_*`, then an optional `opencx.toml`, then defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
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


DEFAULT_PERSONAL_FIELDS: tuple[str, ...] = (
    "email", "phone", "name", "first_name", "last_name", "firstName", "lastName", "username",
    "address", "street", "city", "postal_code", "postalCode", "zip", "birthday", "ip",
    "userAgent", "user_agent", "device", "location", "traits", "externalIds",
)  # fmt: skip
_FIELD_ROOTS = ("properties", "traits", "context")


class PrivacySettings(BaseSettings):
    """Personal data at ingest and in anonymisation (see docs/privacy.md)."""

    model_config = SettingsConfigDict(extra="forbid")

    salt: str = Field(
        default="",
        description="Secret mixed into every privacy hash (suppressed identifiers, hashed "
        "fields); empty: a random salt made once per database and kept in it.",
    )
    hash_fields: list[str] = Field(
        default=[],
        description="Dotted paths (`context.ip`, `properties.card_last4`) replaced at ingest "
        "by the salted SHA-256 of their value.",
    )
    drop_fields: list[str] = Field(
        default=[], description="Dotted paths removed at ingest, before anything is stored."
    )
    personal_fields: list[str] = Field(
        default=list(DEFAULT_PERSONAL_FIELDS),
        description="Key names (at any depth of properties and context) that anonymisation "
        "removes from a person's events; traits are always removed.",
    )

    @field_validator("hash_fields", "drop_fields")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            root, dot, rest = path.partition(".")
            if root not in _FIELD_ROOTS or not dot or not rest or "" in rest.split("."):
                raise ValueError(
                    f"{path!r} must be a dotted path under {', '.join(_FIELD_ROOTS)} "
                    "(e.g. context.ip or properties.card_last4)"
                )
        return paths


class RateLimitSettings(BaseSettings):
    """Rate limits (token buckets in the server's memory) and request body sizes."""

    model_config = SettingsConfigDict(extra="forbid")

    ingest_per_s: float = Field(
        default=2000.0,
        ge=0,
        description="Ingestion requests a second per write key (per client address for "
        "browser requests with the key in the body); 0: no limit.",
    )
    ingest_burst: float = Field(
        default=4000.0, ge=1, description="Ingestion requests a write key may send at once."
    )
    api_per_s: float = Field(
        default=100.0,
        ge=0,
        description="Read and admin API requests a second per API token; 0: no limit.",
    )
    api_burst: float = Field(
        default=400.0, ge=1, description="API requests a token may send at once."
    )
    login_per_min: float = Field(
        default=10.0, ge=0, description="Failed sign-ins a minute per client address; 0: no limit."
    )
    login_burst: float = Field(
        default=10.0, ge=1, description="Failed sign-ins an address may make at once."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=0,
        description="Largest request body on the read/admin API and web forms (ingestion "
        "has max_batch_bytes); larger gets 413. 0: no limit.",
    )


# A Spark master after pyspark:// (local[N], local[*], spark://host:port, yarn, k8s://...),
# or a Spark Connect address sc://host:port with optional /;key=value parameters.
_WAREHOUSE_URL = re.compile(
    r"pyspark://(local(\[(\d+|\*)\])?|spark://[\w.-]+:\d+|yarn|k8s://\S+)"
    r"|sc://[\w.-]+(:\d{1,5})?(/;\S*)?"
)
# DuckDB's memory sizes: decimal (KB…TB) or binary (KiB…TiB) units, or a percentage of the
# machine's memory as DuckDB detects it (cgroup limits included).
_MEMORY_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b)", re.IGNORECASE)
_MEMORY_UNITS = {
    f"{p}{i}b": (1024 if i else 1000) ** (n + 1) for n, p in enumerate("kmgt") for i in ("", "i")
}
_SMALLEST_MEMORY_LIMIT = 64 * 10**6  # below it DuckDB runs out of memory on ordinary queries


def _check_memory_limit(value: str) -> str:
    """`value` if DuckDB may be given it as `memory_limit`; else a ValueError saying why."""
    accepted = "a size such as 2GB or 512MiB, or a percentage of the machine's memory such as 25%"
    found = _MEMORY_SIZE.fullmatch(value.strip())
    if found is None:
        raise ValueError(f"memory_limit {value!r} must be {accepted}")
    number, unit = float(found[1]), found[2].lower()
    if unit == "%" and not 0 < number <= 100:
        raise ValueError(f"memory_limit {value!r} must be a percentage above 0 and at most 100%")
    if unit != "%" and number * _MEMORY_UNITS[unit] < _SMALLEST_MEMORY_LIMIT:
        raise ValueError(f"memory_limit {value!r} must be at least 64MB (DuckDB needs it)")
    return f"{found[1]}{found[2]}"


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
    hsts_max_age_s: int = Field(
        default=31_536_000,
        ge=0,
        description="Strict-Transport-Security max-age sent on web pages served over https "
        "(0: never sent).",
    )
    max_event_bytes: int = Field(default=32 * 1024, description="Largest single event.")
    max_batch_bytes: int = Field(default=500 * 1024, description="Largest request body.")
    max_batch_events: int = Field(default=2500, description="Most events in one batch.")
    flush_events: int = Field(default=5000, description="Group commit: flush after N events.")
    flush_ms: int = Field(default=20, description="Group commit: or after M milliseconds.")
    checkpoint_mb: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="DuckDB checkpoints its write-ahead log past this many MB (DuckDB's own "
        "default, 16, rewrites the open row group four times as often under steady ingest).",
    )
    ingest_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Processes that validate server-side batches beside the server "
        "(its GIL is the write path's limit); empty: one per core beyond the first, at "
        "most 4; 0: validate in the server's process.",
    )
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
    memory_limit: str = Field(
        default="25%",
        description="Most memory DuckDB may take for its cache of database blocks and the "
        "working memory of queries: a size (`2GB`, `512MiB`) or a percentage of the machine's "
        "memory (`25%`). Past it DuckDB evicts cached blocks and spills big queries to "
        "`temp_directory`. The server's own memory (identity graph, dedup index) is not in it.",
    )
    temp_directory: Path | None = Field(
        default=None,
        description="Folder DuckDB spills queries larger than `memory_limit` to; empty: "
        "`<db file>.tmp` beside the database.",
    )
    warehouse: str = Field(
        default="",
        description="Engine the analytics run on: empty for the embedded DuckDB, "
        "`pyspark://local[2]` (a Spark master) or `sc://HOST:PORT` (Spark Connect) for "
        "Spark over the Parquet export in `warehouse_dir`.",
    )
    warehouse_dir: Path | None = Field(
        default=None,
        description="Parquet export the Spark warehouse reads (refreshed incrementally); "
        "empty: `<db name>-parquet` beside the database file.",
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @field_validator("memory_limit")
    @classmethod
    def _memory_limit(cls, value: str) -> str:
        return _check_memory_limit(value)

    @field_validator("ingest_workers", "temp_directory", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        """`OPENCX_INGEST_WORKERS=` (as an env file writes it) means the default, not an error."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("warehouse")
    @classmethod
    def _warehouse_url(cls, url: str) -> str:
        if url and not _WAREHOUSE_URL.fullmatch(url):
            raise ValueError(
                f"{url!r} must be empty (embedded DuckDB), pyspark://MASTER "
                "(e.g. pyspark://local[2], pyspark://spark://host:7077) or sc://HOST:PORT"
            )
        return url

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
