"""Settings: one typed object, built once at start-up from the environment and `c2bot.toml`.

The environment wins over the file; secrets are `SecretStr` so they never print. Every name is
part of the operator contract (DESIGN.md "Settings").
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "C2_CONFIG"
DEFAULT_CONFIG_FILE = "c2bot.toml"
PRIORITIES = ("highest", "high", "normal", "low")
_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|bd)\s*$")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class Target:
    """A first-response target: a wall-clock span or a number of business days."""

    minutes: int = 0
    business_days: int = 0

    def __str__(self) -> str:
        if self.business_days:
            return f"{self.business_days} business day" + ("s" if self.business_days > 1 else "")
        if self.minutes % 60 == 0:
            hours = self.minutes // 60
            return f"{hours} hour" + ("s" if hours > 1 else "")
        return f"{self.minutes} minutes"


def parse_duration(text: str) -> Target:
    """'30m' -> 30 minutes, '2h' -> 120 minutes, '1bd' -> one business day."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1bd")
    amount, unit = int(match[1]), match[2]
    if unit == "bd":
        return Target(business_days=amount)
    return Target(minutes=amount * (60 if unit == "h" else 1))


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{text!r} is not host:port")
    return host, int(port)


DEFAULT_FAX_COUNTRIES = (
    "NL,BE,LU,DE,FR,GB,IE,AT,CH,DK,SE,NO,FI,IS,ES,PT,IT,MT,GR,CY,PL,CZ,SK,HU,SI,HR,EE,LV,LT,US,CA"
)


class Settings(BaseSettings):
    """Every setting of DESIGN.md plus the case-handling ones this project adds."""

    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=False, frozen=True, env_ignore_empty=True
    )

    database_url: str = Field("sqlite+aiosqlite:///./var/c2bot.db", alias="C2_DATABASE_URL")
    http_host: str = Field("127.0.0.1", alias="C2_HTTP_HOST")
    http_port: int = Field(8080, alias="C2_HTTP_PORT", ge=0, le=65535)
    smtp_host: str = Field("127.0.0.1", alias="C2_SMTP_HOST")
    smtp_port: int = Field(2525, alias="C2_SMTP_PORT", ge=0, le=65535)
    smtp_relay: str = Field("127.0.0.1:25", alias="C2_SMTP_RELAY")
    mail_domain: str = Field("localhost", alias="C2_MAIL_DOMAIN")
    mail_max_bytes: int = Field(25 * 1024 * 1024, alias="C2_MAIL_MAX_BYTES", gt=0)
    imap_host: str | None = Field(None, alias="C2_IMAP_HOST")
    imap_port: int | None = Field(None, alias="C2_IMAP_PORT")
    imap_user: str | None = Field(None, alias="C2_IMAP_USER")
    imap_password: SecretStr | None = Field(None, alias="C2_IMAP_PASSWORD")
    imap_tls: bool | None = Field(None, alias="C2_IMAP_TLS")
    esl_host: str = Field("127.0.0.1", alias="C2_ESL_HOST")
    esl_port: int = Field(8021, alias="C2_ESL_PORT")
    esl_password: SecretStr = Field(SecretStr("ClueCon"), alias="C2_ESL_PASSWORD")
    esl_hosts: str | None = Field(None, alias="C2_ESL_HOSTS")
    freeswitch_secret: SecretStr | None = Field(None, alias="C2_FREESWITCH_SECRET")
    fax_spool: Path = Field(Path("./var/fax"), alias="C2_FAX_SPOOL")
    fax_gateway: str = Field("sofia/gateway/pstn/", alias="C2_FAX_GATEWAY")
    fax_retries: int = Field(3, alias="C2_FAX_RETRIES", ge=0, le=10)
    fax_retry_wait: int = Field(300, alias="C2_FAX_RETRY_WAIT", ge=1)
    fax_busy_wait: int = Field(900, alias="C2_FAX_BUSY_WAIT", ge=1)
    fax_max_pages: int = Field(50, alias="C2_FAX_MAX_PAGES", ge=1, le=1000)
    fax_daily_pages: int = Field(500, alias="C2_FAX_DAILY_PAGES", ge=0)
    fax_resolution: Literal["fine", "normal"] = Field("fine", alias="C2_FAX_RESOLUTION")
    fax_paper: Literal["a4", "letter"] = Field("a4", alias="C2_FAX_PAPER")
    fax_country: str = Field("NL", alias="C2_FAX_COUNTRY", min_length=2, max_length=2)
    fax_countries: str = Field(DEFAULT_FAX_COUNTRIES, alias="C2_FAX_COUNTRIES")
    fax_workers: int = Field(2, alias="C2_FAX_WORKERS", ge=1, le=64)
    fax_call_timeout: int = Field(1800, alias="C2_FAX_CALL_TIMEOUT", ge=30)
    fax_lease: int = Field(90, alias="C2_FAX_LEASE", ge=2)
    imap_folder: str = Field("INBOX", alias="C2_IMAP_FOLDER")
    support_channel: str | None = Field(None, alias="C2_SUPPORT_CHANNEL")
    secret_key: SecretStr | None = Field(None, alias="C2_SECRET_KEY")
    sip_domain: str = Field("{account}.sip.localhost", alias="C2_SIP_DOMAIN")
    recordings_dir: Path = Field(Path("./var/recordings"), alias="C2_RECORDINGS_DIR")
    pstn_gateway: str = Field("sofia/gateway/pstn/", alias="C2_PSTN_GATEWAY")
    sip_profile: str = Field("external", alias="C2_SIP_PROFILE")
    port_lead_days: int = Field(3, alias="C2_PORT_LEAD_DAYS", ge=0, le=60)
    port_country: str = Field("NL", alias="C2_PORT_COUNTRY", pattern=r"^[A-Z]{2}$")
    currency: str = Field("EUR", alias="C2_CURRENCY", pattern=r"^[A-Z]{3}$")
    vat_rate: Decimal = Field(Decimal("21"), alias="C2_VAT_RATE", ge=0, le=100)
    invoice_issuer: str = Field("c2bot carrier", alias="C2_INVOICE_ISSUER")
    exports_dir: Path = Field(Path("./var/exports"), alias="C2_EXPORTS_DIR")
    case_targets: str = Field("highest=30m,high=2h,normal=1bd,low=2bd", alias="C2_CASE_TARGETS")
    case_reminder_before: str = Field("15m", alias="C2_CASE_REMINDER_BEFORE")
    business_hours: str = Field("09:00-17:00", alias="C2_BUSINESS_HOURS")
    log_level: str = Field("INFO", alias="C2_LOG_LEVEL")
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
        return (init_settings, env_settings, toml)

    @field_validator("smtp_relay")
    @classmethod
    def _relay_is_host_port(cls, value: str) -> str:
        _host_port(value)
        return value

    @field_validator("case_targets")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        _parse_targets(value)
        return value

    @field_validator("case_reminder_before")
    @classmethod
    def _reminder_parses(cls, value: str) -> str:
        if parse_duration(value).business_days:
            raise ValueError("use minutes or hours (e.g. 15m), not business days")
        return value

    @field_validator("business_hours")
    @classmethod
    def _hours_parse(cls, value: str) -> str:
        _parse_hours(value)
        return value

    @field_validator("fax_countries")
    @classmethod
    def _countries_parse(cls, value: str) -> str:
        return ",".join(parse_countries(value))

    @field_validator("fax_country")
    @classmethod
    def _country_upper(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError("must be a two-letter country code such as NL")
        return value.upper()

    @field_validator("esl_hosts")
    @classmethod
    def _esl_hosts_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_esl_hosts(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def relay(self) -> tuple[str, int]:
        return _host_port(self.smtp_relay)

    @property
    def targets(self) -> dict[str, Target]:
        return _parse_targets(self.case_targets)

    @property
    def reminder_before(self) -> timedelta:
        return timedelta(minutes=parse_duration(self.case_reminder_before).minutes)

    @property
    def business_day(self) -> tuple[time, time]:
        return _parse_hours(self.business_hours)

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and (
            self.slack_signing_secret is not None or self.slack_app_token is not None
        )


def parse_countries(text: str) -> list[str]:
    """`NL, be,DE` -> ['NL', 'BE', 'DE']; anything but two letters is refused."""
    codes = [part.strip().upper() for part in text.split(",") if part.strip()]
    bad = [code for code in codes if len(code) != 2 or not code.isalpha()]
    if bad:
        raise ValueError(f"{', '.join(bad)} is not a two-letter country code")
    return codes


def parse_esl_hosts(text: str) -> list[tuple[str, str, int, str | None]]:
    """`fs2=10.0.0.2:8021,fs3=10.0.0.3:8021:secret` -> [(name, host, port, password or None)]."""
    hosts: list[tuple[str, str, int, str | None]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, rest = part.partition("=")
        bits = rest.split(":", 2)
        if not sep or not name.strip() or len(bits) < 2 or not bits[1].isdigit():
            raise ValueError(f"{part!r} is not name=host:port[:password]")
        password = bits[2] if len(bits) == 3 else None
        hosts.append((name.strip(), bits[0], int(bits[1]), password))
    return hosts


def _parse_targets(text: str) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, duration = part.partition("=")
        if not sep or name.strip() not in PRIORITIES:
            raise ValueError(f"{part!r} is not priority=duration with priority in {PRIORITIES}")
        targets[name.strip()] = parse_duration(duration)
    missing = [p for p in PRIORITIES if p not in targets]
    if missing:
        raise ValueError(f"no target for {', '.join(missing)}")
    return targets


def _parse_hours(text: str) -> tuple[time, time]:
    start, sep, end = text.partition("-")
    try:
        opens, closes = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM") from None
    if not sep or opens >= closes:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM with the start before the end")
    return opens, closes


def load_settings(**overrides: Any) -> Settings:
    """Build settings; a bad value raises `SettingsError` naming the setting and why."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = str(item["loc"][0]) if item["loc"] else "settings"
            problems.append(f"{name}: {item['msg']}")
        raise SettingsError("bad setting " + "; ".join(problems)) from None


def ensure_secret_key(settings: Settings, var_dir: Path = Path("./var")) -> Settings:
    """Use C2_SECRET_KEY, or a key generated once into var/secret.key (mode 0600)."""
    if settings.secret_key is not None:
        return settings
    key_file = var_dir / "secret.key"
    if not key_file.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    key = key_file.read_text().strip()
    return settings.model_copy(update={"secret_key": SecretStr(key)})
