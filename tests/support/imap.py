"""A real dovecot on loopback for tests, with its own config, state and logs under tmp_path.

`async with running_dovecot(tmp_path) as imap:` starts `dovecot -F -c <generated config>` on a
free port (plain IMAP, and IMAPS with a self-signed certificate that `imap.client_ssl` trusts),
without reading or touching the machine's dovecot config. Users live in a passwd-file with plain
passwords (`add_user`, re-read by dovecot when it changes); tests put mail in with IMAP APPEND and
read flags back over IMAP (`append`, `flags`), through imaplib in a worker thread so the event
loop under test keeps running. `restart()` stops the master (dropping every connection, as a
real restart does) and starts it again on the same ports.

Running as root, dovecot refuses mail access as uid 0, and pytest's tmp_path is not reachable by
other users; so then the maildirs go in a private /tmp directory owned by `nobody`, removed at
the end. Everything else (base_dir, state_dir, logs, config) stays in tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import imaplib
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port

DOVECOT = Path(os.environ.get("C2_TEST_DOVECOT", "/usr/sbin/dovecot"))
START_TIMEOUT = 15.0


def dovecot_available() -> bool:
    return DOVECOT.is_file() and os.access(DOVECOT, os.X_OK)


@dataclass(frozen=True)
class _Accounts:
    """Which system users dovecot runs as, and who owns the mail."""

    internal_user: str
    login_user: str
    auth_user: str
    mail_uid: int
    mail_gid: int


def _accounts() -> _Accounts:
    if os.geteuid() != 0:  # a rootless dovecot: everything runs as us
        me = pwd.getpwuid(os.geteuid())
        return _Accounts(me.pw_name, me.pw_name, me.pw_name, me.pw_uid, me.pw_gid)
    names = {entry.pw_name for entry in pwd.getpwall()}
    internal = "dovecot" if "dovecot" in names else "nobody"
    login = "dovenull" if "dovenull" in names else "nobody"
    nobody = pwd.getpwnam("nobody")
    # auth reads the passwd-file in tmp_path, which only root can reach
    return _Accounts(internal, login, "root", nobody.pw_uid, nobody.pw_gid)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{mail}/%u
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
  default_fields = uid={mail_uid} gid={mail_gid} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service auth {{
  user = {auth_user}
}}
# no growing delay after failed logins: tests fail logins on purpose
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


@dataclass
class Dovecot:
    """A dovecot we started; see the module docstring."""

    root: Path
    mail: Path
    port: int
    tls_port: int
    cert: Path
    users: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_ssl(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate (and verifies it)."""
        return ssl.create_default_context(cafile=str(self.cert))

    def add_user(self, name: str, password: str) -> None:
        """Add a user, or change its password (dovecot re-reads the file when it changes)."""
        self.users[name] = password
        lines = "".join(f"{user}:{{PLAIN}}{secret}::::::\n" for user, secret in self.users.items())
        staged = self.root / "users.new"
        staged.write_text(lines)
        staged.replace(self.root / "users")

    async def append(self, user: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> int:
        """Put a message in `user`'s folder through IMAP APPEND; returns its UID."""
        return await asyncio.to_thread(self._append, user, raw, folder, flags)

    async def flags(self, user: str, folder: str = "INBOX") -> dict[int, frozenset[str]]:
        """Each message's flags by UID (read with EXAMINE, so reading changes nothing)."""
        return await asyncio.to_thread(self._flags, user, folder)

    def log_text(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def restart(self) -> None:
        """Stop the master (every client connection drops) and start it again, same ports."""
        await self.stop()
        await self.start()

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    async def stop(self) -> None:
        """Stop dovecot as an init system would: SIGTERM to the whole process group, so the
        imap processes serving clients go too (the master alone leaves them running)."""
        process, self.process = self.process, None
        if process is not None:
            await asyncio.to_thread(_stop_group, process)

    def _start(self) -> None:
        """Start `dovecot -F` (foreground, so it is our child) and wait for its greeting."""
        with (self.root / "dovecot.stderr").open("ab") as stderr:
            self.process = subprocess.Popen(
                [str(DOVECOT), "-F", "-c", str(self.root / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start: {self._diagnostics()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=2) as probe,
            ):
                if probe.recv(200).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer on port {self.port}: {self._diagnostics()}")

    def _diagnostics(self) -> str:
        stderr = self.root / "dovecot.stderr"
        return (stderr.read_text(errors="replace") if stderr.exists() else "") + self.log_text()

    def _login(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            client.login(user, self.users[user])
        except BaseException:
            client.shutdown()
            raise
        return client

    def _append(self, user: str, raw: bytes, folder: str, flags: str) -> int:
        client = self._login(user)
        try:
            status, data = client.append(folder, f"({flags})" if flags else None, None, raw)
            assert status == "OK", data
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            assert match, data
            return int(match.group(1))
        finally:
            client.logout()

    def _flags(self, user: str, folder: str) -> dict[int, frozenset[str]]:
        client = self._login(user)
        try:
            status, data = client.select(folder, readonly=True)
            assert status == "OK", data
            status, data = client.uid("FETCH", "1:*", "(UID FLAGS)")
            assert status == "OK", data
            found: dict[int, frozenset[str]] = {}
            for item in data:
                uid = re.search(rb"UID (\d+)", item) if isinstance(item, bytes) else None
                names = re.search(rb"FLAGS \(([^)]*)\)", item) if isinstance(item, bytes) else None
                if uid and names:
                    found[int(uid.group(1))] = frozenset(names.group(1).decode().split())
            return found
        finally:
            client.logout()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (start_new_session made the master its leader), as an
    init system would: the imap processes serving clients outlive the master otherwise. Each
    says BYE and closes its connection; the exited ones are init's zombies, not waited for."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextlib.asynccontextmanager
async def running_dovecot(tmp_path: Path) -> AsyncIterator[Dovecot]:
    """Start a private dovecot; stop it and remove its mail afterwards."""
    root = tmp_path / "dovecot"
    root.mkdir()
    accounts = _accounts()
    private_mail = os.geteuid() == 0
    if private_mail:
        mail = Path(tempfile.mkdtemp(prefix="c2bot-dovecot-mail-"))
        os.chown(mail, accounts.mail_uid, accounts.mail_gid)
    else:
        mail = root / "mail"
        mail.mkdir()
    cert, key = _self_signed(root)
    server = Dovecot(root=root, mail=mail, port=free_port(), tls_port=free_port(), cert=cert)
    (root / "dovecot.conf").write_text(
        CONFIG.format(
            root=root,
            mail=mail,
            cert=cert,
            key=key,
            port=server.port,
            tls_port=server.tls_port,
            internal_user=accounts.internal_user,
            login_user=accounts.login_user,
            auth_user=accounts.auth_user,
            mail_uid=accounts.mail_uid,
            mail_gid=accounts.mail_gid,
        )
    )
    server.add_user("postmaster", "postmaster-secret")
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        if private_mail:
            shutil.rmtree(mail, ignore_errors=True)
