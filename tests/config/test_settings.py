"""Settings: environment over c2bot.toml over defaults, named errors, secrets kept secret."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from c2bot.config.settings import (
    Settings,
    SettingsError,
    Target,
    ensure_secret_key,
    load_settings,
)


def test_defaults_match_the_operator_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing set, the embedded defaults of DESIGN.md apply."""
    for name in ("C2_DATABASE_URL", "C2_HTTP_PORT", "C2_SMTP_PORT", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./var/c2bot.db"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", 2525)
    assert settings.relay == ("127.0.0.1", 25)
    assert settings.slack_api_url == "https://slack.com/api/"
    assert not settings.slack_enabled
    assert settings.targets["highest"] == Target(minutes=30)
    assert settings.targets["low"] == Target(business_days=2)
    assert settings.reminder_before == timedelta(minutes=15)
    assert settings.business_day == (time(9), time(17))


def test_environment_wins_over_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A value in the environment beats the same value in c2bot.toml; the file beats defaults."""
    config = tmp_path / "c2bot.toml"
    config.write_text('C2_MAIL_DOMAIN = "from-file.test"\nC2_HTTP_PORT = 9090\n')
    monkeypatch.setenv("C2_CONFIG", str(config))
    monkeypatch.setenv("C2_MAIL_DOMAIN", "from-env.test")
    monkeypatch.setenv("C2_SUPPORT_CHANNEL", "")
    settings = load_settings()
    assert settings.mail_domain == "from-env.test"
    assert settings.http_port == 9090
    assert settings.support_channel is None


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each malformed value stops start-up with its name in the message."""
    cases = {
        "C2_HTTP_PORT": "eighty",
        "C2_SMTP_RELAY": "no-port-here",
        "C2_CASE_TARGETS": "highest=soon",
        "C2_BUSINESS_HOURS": "17:00-09:00",
        "C2_DATABASE_URL": "mysql://x",
    }
    for name, value in cases.items():
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=name):
            load_settings()
        monkeypatch.delenv(name)


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens and passwords do not appear in repr or str of the settings."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "sign-very-secret")
    monkeypatch.setenv("C2_ESL_PASSWORD", "esl-very-secret")
    settings = load_settings()
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    assert "very-secret" not in shown
    assert settings.slack_enabled


def test_secret_key_generated_once(tmp_path: Path) -> None:
    """Without C2_SECRET_KEY a key is generated into var/ once (0600) and reused."""
    settings = Settings()
    first = ensure_secret_key(settings, tmp_path)
    second = ensure_secret_key(settings, tmp_path)
    assert first.secret_key is not None and second.secret_key is not None
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
