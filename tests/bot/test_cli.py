"""The `c2bot` command as an operator runs it: set-up commands, the shell, serve and SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.net import free_port

C2BOT = [sys.executable, "-m", "c2bot.bot.cli"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2_", "SLACK_"))}
    clean.update(
        {
            "C2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c2.db'}",
            "C2_CONFIG": str(tmp_path / "c2bot.toml"),
            "C2_MAIL_DOMAIN": "c2.test",
        }
    )
    return clean


def run(
    env: dict[str, str], cwd: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*C2BOT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_setup_and_scripted_shell(env: dict[str, str], tmp_path: Path) -> None:
    """account add, user link and a scripted shell session work from a fresh database."""
    assert run(env, tmp_path, "db", "upgrade").returncode == 0
    added = run(
        env,
        tmp_path,
        "account",
        "add",
        "R100",
        "--company",
        "Resell BV",
        "--email",
        "info@resell.nl",
    )
    assert added.returncode == 0, added.stderr
    assert "Account R100 (Resell BV) added" in added.stdout
    run(
        env,
        tmp_path,
        "account",
        "add",
        "1001",
        "--company",
        "Acme BV",
        "--email",
        "office@acme.nl",
        "--reseller",
        "R100",
    )
    linked = run(
        env,
        tmp_path,
        "user",
        "link",
        "UCUST",
        "--role",
        "customer",
        "--account",
        "1001",
        "--email",
        "jan@acme.nl",
        "--name",
        "Jan",
    )
    assert linked.returncode == 0 and "UCUST is now customer on account 1001" in linked.stdout
    script = (
        'case new type:technical priority:high subject:"Calls drop" '
        'description:"All calls drop after 30 seconds"\ncase list\n'
    )
    shell = run(env, tmp_path, "shell", "--as", "UCUST", stdin=script)
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert "Case #1 opened: Calls drop" in shell.stdout
    assert "#1    1001" in shell.stdout and "high" in shell.stdout


def test_shell_refusals_and_exit_status(env: dict[str, str], tmp_path: Path) -> None:
    """A refused line prints the reason and makes the exit status 1; unknown --as is explained."""
    refused = run(env, tmp_path, "shell", stdin="case show 99\n")
    assert (
        refused.returncode == 1
        and "There is no case #99 among the cases you may see." in refused.stdout
    )
    stranger = run(env, tmp_path, "shell", "--as", "UNOBODY", stdin="case list\n")
    assert stranger.returncode == 1 and "c2bot user link UNOBODY" in stranger.stderr


def test_bad_setting_is_named(env: dict[str, str], tmp_path: Path) -> None:
    """A malformed setting stops start-up with a message naming it."""
    env["C2_SMTP_RELAY"] = "nonsense"
    result = run(env, tmp_path, "db", "upgrade")
    assert result.returncode == 2 and "C2_SMTP_RELAY" in result.stderr


def test_account_add_refusals(env: dict[str, str], tmp_path: Path) -> None:
    """Duplicate accounts, unknown resellers and bad time zones are refused in words."""
    run(env, tmp_path, "account", "add", "1", "--company", "A", "--email", "a@a.nl")
    dup = run(env, tmp_path, "account", "add", "1", "--company", "A", "--email", "a@a.nl")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    orphan = run(
        env,
        tmp_path,
        "account",
        "add",
        "2",
        "--company",
        "B",
        "--email",
        "b@b.nl",
        "--reseller",
        "404",
    )
    assert orphan.returncode == 1 and "There is no account 404" in orphan.stderr
    zone = run(
        env,
        tmp_path,
        "account",
        "add",
        "3",
        "--company",
        "C",
        "--email",
        "c@c.nl",
        "--timezone",
        "Mars/Olympus",
    )
    assert zone.returncode == 1 and "not a time zone" in zone.stderr


def test_import_customers(env: dict[str, str], tmp_path: Path) -> None:
    """Customers import from CSV with the guide's columns; a bad row stops the whole file and
    is named with its line (more in tests/bot/test_customer_commands.py)."""
    run(env, tmp_path, "account", "add", "R100", "--company", "Resell BV", "--email", "i@r.nl")
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(
        "Account Number,Company,Email,Reseller,Time Zone\n"
        "1001,Acme BV,office@acme.nl,R100,\n"
        "1002,Broken,not-an-email,R100,\n"
    )
    result = run(env, tmp_path, "import", "customers", str(csv_file))
    assert result.returncode == 1
    assert "Nothing was imported: 1 of 2 row(s)" in result.stderr
    assert "3     Email: not an email address" in result.stderr
    csv_file.write_text(csv_file.read_text().replace("not-an-email", "office@broken.nl"))
    result = run(env, tmp_path, "import", "customers", str(csv_file))
    assert result.returncode == 0 and "Imported 2 customer(s)" in result.stdout


def test_serve_without_slack_then_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    """serve migrates, says once that Slack is off, answers /healthz, and stops on SIGTERM."""
    http_port, smtp_port = free_port(), free_port()
    env.update({"C2_HTTP_PORT": str(http_port), "C2_SMTP_PORT": str(smtp_port)})
    process = subprocess.Popen(
        [*C2BOT, "serve"],
        env=env,
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        body = b""
        for _ in range(100):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{http_port}/healthz", timeout=1
                ) as r:
                    body = r.read()
                    break
            except OSError:
                time.sleep(0.1)
        assert b'"database":"ok"' in body
        metrics_url = f"http://127.0.0.1:{http_port}/metrics"
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            assert b"c2bot_mail_accepted_total" in response.read()
        with socket.create_connection(("127.0.0.1", smtp_port), timeout=5) as smtp:
            assert smtp.recv(100).startswith(b"220")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stderr.count("Slack is off") == 1
    assert "c2bot stopped" in stderr


def test_serve_refuses_unknown_part(env: dict[str, str], tmp_path: Path) -> None:
    """--only with a part that does not exist is refused with the list of parts."""
    result = run(env, tmp_path, "serve", "--only", "slack,teleport")
    assert result.returncode == 2 and "unknown part teleport" in result.stderr
