"""SQLAlchemy 2.0 models: accounts, people, cases, mail bookkeeping and the audit log.

Times are stored as UTC and always come back timezone-aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    RESELLER = "reseller"
    STAFF = "staff"
    ADMIN = "admin"


class CaseType(enum.StrEnum):
    TECHNICAL = "technical"
    INVOICE = "invoice"
    PRICING = "pricing"


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    HIGHEST = "highest"


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    CLOSED = "closed"


class Channel(enum.StrEnum):
    """The front door something came in through (or goes out by)."""

    SLACK = "slack"
    EMAIL = "email"
    SHELL = "shell"
    SYSTEM = "system"


class MessageKind(enum.StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    NOTE = "note"
    SYSTEM = "system"


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    company: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    rate_group: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    reseller: Mapped[Account | None] = relationship(remote_side=[id], lazy="joined", join_depth=1)
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="account", order_by="Contact.id", lazy="selectin"
    )


class Contact(Base):
    """A person at an account the carrier may talk to; not necessarily a c2bot user."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("account_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    prefers_email: Mapped[bool] = mapped_column(Boolean, default=False)

    account: Mapped[Account] = relationship(back_populates="contacts")


class Person(Base):
    """Somebody who uses c2bot: linked by Slack user id and/or email, with one role."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    slack_user_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    prefers_email: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account | None] = relationship(lazy="joined")


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_status_account", "status", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    type: Mapped[CaseType] = mapped_column(_enum(CaseType))
    priority: Mapped[Priority] = mapped_column(_enum(Priority))
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus), default=CaseStatus.OPEN)
    subject: Mapped[str] = mapped_column(String(250))
    description: Mapped[str] = mapped_column(Text)
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    source: Mapped[Channel] = mapped_column(_enum(Channel))
    source_ref: Mapped[str | None] = mapped_column(String(998))
    reply_by_email: Mapped[bool] = mapped_column(Boolean, default=False)
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32), index=True)
    customer_dm_channel: Mapped[str | None] = mapped_column(String(32))
    customer_dm_ts: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_due: Mapped[datetime]
    first_response_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship(lazy="joined")
    requester: Mapped[Person | None] = relationship(foreign_keys=[requester_id], lazy="joined")
    assignee: Mapped[Person | None] = relationship(foreign_keys=[assignee_id], lazy="joined")


class CaseMessage(Base):
    __tablename__ = "case_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[MessageKind] = mapped_column(_enum(MessageKind))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    author_label: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    verified: Mapped[bool] = mapped_column(Boolean, default=True)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    source_ref: Mapped[str | None] = mapped_column(String(998))
    shown_in_slack: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseFile(Base):
    __tablename__ = "case_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("case_messages.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    posted_to_slack: Mapped[bool] = mapped_column(Boolean, default=False)


class ReplyToken(Base):
    """`case+<token>@`: binds one case to one recipient address."""

    __tablename__ = "reply_tokens"
    __table_args__ = (Index("ix_reply_tokens_case_email", "case_id", "email"),)

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class MailMessageId(Base):
    """Every Message-ID we sent or received for a case, to thread replies that lost their token."""

    __tablename__ = "mail_message_ids"

    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundMail(Base):
    """Every message we answered 250 to, raw, with what became of it."""

    __tablename__ = "inbound_mail"
    __table_args__ = (Index("ix_inbound_mail_pending", "outcome", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    envelope_from: Mapped[str] = mapped_column(String(254))
    recipients: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # The SMTP AUTH login the message came with (Mail2Fax binds the fax to it).
    auth_login: Mapped[str | None] = mapped_column(String(254))
    # When a process took up a kept fax mail (a claim that lapses if that process dies).
    claimed_at: Mapped[datetime | None]


class OutboundMail(Base):
    """The outbox: mail is written here in the same transaction as its cause, then relayed."""

    __tablename__ = "outbound_mail"
    __table_args__ = (Index("ix_outbound_mail_pending", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    envelope_from: Mapped[str] = mapped_column(String(254))
    recipient: Mapped[str] = mapped_column(String(254))
    message_id: Mapped[str] = mapped_column(String(998))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")


class PendingCommand(Base):
    """A changing command received by email, waiting for its sender to confirm it by reply."""

    __tablename__ = "pending_commands"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class SlackInbox(Base):
    """A Slack request we acked whose work is not done yet: kept first, so an ack loses nothing."""

    __tablename__ = "slack_inbox"
    __table_args__ = (Index("ix_slack_inbox_pending", "done_at", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class MailAddress(Base):
    """Delivery health of an address: bounces mark it failing."""

    __tablename__ = "mail_addresses"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    failing: Mapped[bool] = mapped_column(Boolean, default=False)
    last_status: Mapped[str] = mapped_column(String(32), default="")
    last_diagnostic: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One change made through any front door: who, through what, did what to which object."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    actor_label: Mapped[str] = mapped_column(String(300))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- fax bridge -------------------------------------------------------------------------------


class FaxState(enum.StrEnum):
    QUEUED = "queued"
    RENDERING = "rendering"
    DIALING = "dialing"
    SENDING = "sending"
    SENT = "sent"
    RETRY_WAIT = "retry-wait"
    FAILED = "failed"
    CANCELLED = "cancelled"


FAX_FINAL = (FaxState.SENT, FaxState.FAILED, FaxState.CANCELLED)
FAX_WAITING = (FaxState.QUEUED, FaxState.RETRY_WAIT)


class FaxSettings(Base):
    """An account's own fax settings (the platform's "Fax settings"); unset fields inherit.

    A customer inherits from its reseller, a reseller from the global settings. The mailbox
    password is encrypted with C2_SECRET_KEY and never shown back.
    """

    __tablename__ = "fax_settings"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    retries: Mapped[int | None] = mapped_column(Integer)
    imap_host: Mapped[str | None] = mapped_column(String(255))
    imap_port: Mapped[int | None] = mapped_column(Integer)
    imap_user: Mapped[str | None] = mapped_column(String(254))
    imap_password: Mapped[str | None] = mapped_column(Text)
    imap_tls: Mapped[bool | None] = mapped_column(Boolean)
    server: Mapped[str | None] = mapped_column(String(64))
    countries: Mapped[str | None] = mapped_column(String(500))
    allow_premium: Mapped[bool | None] = mapped_column(Boolean)
    daily_pages: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FaxSender(Base):
    """An address allowed to send faxes by mail for an account (the platform's "Fax Email Id")."""

    __tablename__ = "fax_senders"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), unique=True)
    smtp_password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(lazy="joined")


class Did(Base):
    """A phone number the platform routes to an account. The routing issue extends it."""

    __tablename__ = "dids"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    forward_type: Mapped[str | None] = mapped_column(String(16))
    destination: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship(lazy="joined")


class FaxRequest(Base):
    """One fax to send (one mail, one /fax send): its documents, rendered once for every number."""

    __tablename__ = "fax_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    source_ref: Mapped[str | None] = mapped_column(String(400), unique=True)
    sender_email: Mapped[str | None] = mapped_column(String(254))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    caller_name: Mapped[str] = mapped_column(String(100), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    cover_text: Mapped[str | None] = mapped_column(Text)
    tiff_path: Mapped[str | None] = mapped_column(String(500))
    pages: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(lazy="joined")
    person: Mapped[Person | None] = relationship(lazy="joined")
    documents: Mapped[list[FaxDocument]] = relationship(
        order_by="FaxDocument.position", lazy="raise_on_sql", cascade="all, delete-orphan"
    )


class FaxDocument(Base):
    __tablename__ = "fax_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("fax_requests.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class FaxJob(Base):
    """One destination of a fax request, claimed by one worker at a time with a lease."""

    __tablename__ = "fax_jobs"
    __table_args__ = (Index("ix_fax_jobs_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("fax_requests.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    state: Mapped[FaxState] = mapped_column(_enum(FaxState), default=FaxState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    call_uuid: Mapped[str | None] = mapped_column(String(36))
    server: Mapped[str | None] = mapped_column(String(64))
    result_code: Mapped[int | None] = mapped_column(Integer)
    result_text: Mapped[str] = mapped_column(Text, default="")
    hangup_cause: Mapped[str] = mapped_column(String(64), default="")
    pages_sent: Mapped[int | None] = mapped_column(Integer)
    pages_total: Mapped[int | None] = mapped_column(Integer)
    remote_station_id: Mapped[str] = mapped_column(String(100), default="")
    bit_rate: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    request: Mapped[FaxRequest] = relationship(lazy="joined")


class FaxAttempt(Base):
    """One call made for a job: kept so a restart can reconcile it with the switch."""

    __tablename__ = "fax_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("fax_jobs.id", ondelete="CASCADE"), index=True)
    call_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    server: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(32), default="")
    result_code: Mapped[int | None] = mapped_column(Integer)
    result_text: Mapped[str] = mapped_column(Text, default="")
    hangup_cause: Mapped[str] = mapped_column(String(64), default="")
    pages: Mapped[int | None] = mapped_column(Integer)


class ReceivedFax(Base):
    """A fax received on a FOIP DID (Fax2Mail), stored once per call before it is mailed."""

    __tablename__ = "received_faxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_uuid: Mapped[str] = mapped_column(String(64), unique=True)
    did_number: Mapped[str] = mapped_column(String(32), default="")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    caller_id: Mapped[str] = mapped_column(String(64), default="")
    remote_station_id: Mapped[str] = mapped_column(String(100), default="")
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    result_code: Mapped[int | None] = mapped_column(Integer)
    result_text: Mapped[str] = mapped_column(Text, default="")
    pages: Mapped[int] = mapped_column(Integer, default=0)
    tiff_path: Mapped[str] = mapped_column(String(500), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    outcome: Mapped[str] = mapped_column(String(32), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- routing (PBX objects served to FreeSWITCH through mod_xml_curl) ---------------------------
#
# A destination (where a call goes next) is two strings everywhere: a type word from
# c2bot.handlers.destinations.TYPES and a value (device usernames, a number, an object's name in
# the same account, an email address, a dial string). Objects are named per account; names are
# their identity in commands and destinations, so they are not renamed.


class _AccountObject:
    """Columns every routing object has: the account that owns it, its name, on/off."""

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SipDevice(Base):
    """A SIP phone or softphone: it registers with `username` and calls out as `caller_number`.

    The password is sealed with C2_SECRET_KEY (FreeSWITCH's directory needs it back for digest
    authentication); it is shown once when made and again only on request, ephemerally.
    """

    __tablename__ = "sip_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    extension: Mapped[str] = mapped_column(String(16))
    password_sealed: Mapped[str] = mapped_column(Text)
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    caller_name: Mapped[str] = mapped_column(String(100), default="")
    voicemail: Mapped[bool] = mapped_column(Boolean, default=False)
    voicemail_pin: Mapped[str] = mapped_column(String(16), default="")
    voicemail_email: Mapped[str] = mapped_column(String(254), default="")
    codecs: Mapped[str] = mapped_column(String(200), default="PCMA,PCMU,G722,OPUS")
    record_calls: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("account_id", "extension"),)


class Recording(_AccountObject, Base):
    """A sound file (16-bit mono PCM WAV, 8 or 16 kHz) in C2_RECORDINGS_DIR: greetings,
    announcements, music on hold. Uploaded from Slack or recorded by dialling 1800."""

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    filename: Mapped[str] = mapped_column(String(300))
    sample_rate: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="upload")  # upload | phone
    recorded_by: Mapped[str] = mapped_column(String(64), default="")  # device username or person


class RingGroup(_AccountObject, Base):
    __tablename__ = "ring_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    strategy: Mapped[str] = mapped_column(String(16), default="simultaneous")  # | sequence
    announcement: Mapped[str] = mapped_column(String(64), default="")  # a recording's name
    ringback: Mapped[str] = mapped_column(String(64), default="")  # tone word or recording
    cid_name_prefix: Mapped[str] = mapped_column(String(32), default="")
    cid_number_prefix: Mapped[str] = mapped_column(String(16), default="")
    recording: Mapped[str] = mapped_column(String(8), default="device")  # on | off | device
    skip_busy: Mapped[bool] = mapped_column(Boolean, default=False)
    noanswer_type: Mapped[str] = mapped_column(String(16), default="")
    noanswer_value: Mapped[str] = mapped_column(String(500), default="")

    members: Mapped[list[RingGroupMember]] = relationship(
        order_by="RingGroupMember.position", lazy="selectin", cascade="all, delete-orphan"
    )


class RingGroupMember(Base):
    """One of up to ten destinations of a ring group: a device username or a phone number."""

    __tablename__ = "ring_group_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("ring_groups.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(64))
    delay: Mapped[int] = mapped_column(Integer, default=0)
    timeout: Mapped[int] = mapped_column(Integer, default=30)


class CallQueue(_AccountObject, Base):
    """A call-center queue (mod_callcenter): callers wait with music while agents are rung."""

    __tablename__ = "call_queues"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    strategy: Mapped[str] = mapped_column(String(40), default="longest-idle-agent")
    moh: Mapped[str] = mapped_column(String(64), default="")  # recording name; default MOH
    agent_tone: Mapped[str] = mapped_column(String(64), default="")
    customer_tone: Mapped[str] = mapped_column(String(64), default="")
    timeout: Mapped[int] = mapped_column(Integer, default=300)  # longest wait, seconds
    failover_type: Mapped[str] = mapped_column(String(16), default="")
    failover_value: Mapped[str] = mapped_column(String(500), default="")

    agents: Mapped[list[QueueAgent]] = relationship(
        order_by="QueueAgent.position", lazy="selectin", cascade="all, delete-orphan"
    )


class QueueAgent(Base):
    __tablename__ = "queue_agents"
    __table_args__ = (UniqueConstraint("queue_id", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("call_queues.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(64))  # a device username or a phone number


class ConferenceProfile(_AccountObject, Base):
    """A mod_conference profile: sounds and parameters, with its caller controls."""

    __tablename__ = "conference_profiles"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    params: Mapped[dict[str, Any]] = mapped_column(default=dict)

    controls: Mapped[list[ConferenceControl]] = relationship(
        order_by="ConferenceControl.digits", lazy="selectin", cascade="all, delete-orphan"
    )


class ConferenceControl(Base):
    """A digit (or digits) a conference member presses, and what it does."""

    __tablename__ = "conference_controls"
    __table_args__ = (UniqueConstraint("profile_id", "digits"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(
        ForeignKey("conference_profiles.id", ondelete="CASCADE")
    )
    digits: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(40))


class Conference(_AccountObject, Base):
    __tablename__ = "conferences"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    greeting: Mapped[str] = mapped_column(String(64), default="")
    profile: Mapped[str] = mapped_column(String(64), default="default")
    pin: Mapped[str] = mapped_column(String(16), default="")


class Ivr(_AccountObject, Base):
    __tablename__ = "ivrs"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    greeting: Mapped[str] = mapped_column(String(64), default="")
    invalid_sound: Mapped[str] = mapped_column(String(64), default="")
    exit_sound: Mapped[str] = mapped_column(String(64), default="")
    timeout: Mapped[int] = mapped_column(Integer, default=10)  # seconds
    retries: Mapped[int] = mapped_column(Integer, default=3)
    direct_dial: Mapped[bool] = mapped_column(Boolean, default=False)
    cid_name_prefix: Mapped[str] = mapped_column(String(32), default="")
    ringback: Mapped[str] = mapped_column(String(64), default="")
    failover_type: Mapped[str] = mapped_column(String(16), default="")
    failover_value: Mapped[str] = mapped_column(String(500), default="")

    options: Mapped[list[IvrOption]] = relationship(
        order_by="IvrOption.digit", lazy="selectin", cascade="all, delete-orphan"
    )


class IvrOption(Base):
    __tablename__ = "ivr_options"
    __table_args__ = (UniqueConstraint("ivr_id", "digit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ivr_id: Mapped[int] = mapped_column(ForeignKey("ivrs.id", ondelete="CASCADE"))
    digit: Mapped[str] = mapped_column(String(1))
    dest_type: Mapped[str] = mapped_column(String(16))
    dest_value: Mapped[str] = mapped_column(String(500))


class TimeCondition(_AccountObject, Base):
    """Rows of times; the matching row with the lowest priority number routes the call, in the
    account's time zone; no row matching (or forced closed) goes to the failover."""

    __tablename__ = "time_conditions"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    force: Mapped[str] = mapped_column(String(8), default="auto")  # auto | open | closed
    forced_by: Mapped[str] = mapped_column(String(300), default="")
    forced_at: Mapped[datetime | None]
    failover_type: Mapped[str] = mapped_column(String(16), default="")
    failover_value: Mapped[str] = mapped_column(String(500), default="")

    rows: Mapped[list[TimeConditionRow]] = relationship(
        order_by="(TimeConditionRow.priority, TimeConditionRow.id)",
        lazy="selectin",
        cascade="all, delete-orphan",
    )


class TimeConditionRow(Base):
    """One row: empty fields match anything. `kind` is "time", or "holiday" (matches on the
    public holidays of `holiday_country`, from the `holidays` package, within the other fields)."""

    __tablename__ = "time_condition_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    condition_id: Mapped[int] = mapped_column(
        ForeignKey("time_conditions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8), default="time")
    start_time: Mapped[str] = mapped_column(String(5), default="")  # HH:MM
    end_time: Mapped[str] = mapped_column(String(5), default="")  # HH:MM, exclusive
    weekdays: Mapped[str] = mapped_column(String(16), default="")  # mon-fri
    monthdays: Mapped[str] = mapped_column(String(8), default="")  # 1-15
    months: Mapped[str] = mapped_column(String(8), default="")  # 1-12 or jan-mar
    years: Mapped[str] = mapped_column(String(10), default="")  # 2026-2027
    holiday_country: Mapped[str] = mapped_column(String(8), default="")  # NL, DE-BY
    priority: Mapped[int] = mapped_column(Integer, default=10)
    dest_type: Mapped[str] = mapped_column(String(16))
    dest_value: Mapped[str] = mapped_column(String(500))


class RoutingChange(Base):
    """A routing change, with the object before and after, so `/route undo` can revert it."""

    __tablename__ = "routing_changes"
    __table_args__ = (Index("ix_routing_changes_actor", "actor_key", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_key: Mapped[str] = mapped_column(String(300))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    object_type: Mapped[str] = mapped_column(String(32))
    object_key: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(String(500))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    undone_at: Mapped[datetime | None]


# --- number porting ---------------------------------------------------------------------------
#
# A port request brings an account's numbers over from another (donor) operator. Numbers are
# stored as ranges of E.164 strings of equal length, so "overlaps" is a string comparison. Every
# step is a PortEvent: the request's history, and the queue of its notices (the support thread,
# the customer's DM, mail), each marked once delivered.


class PortState(enum.StrEnum):
    DRAFT = "draft"  # made, waiting for the signed letter of authorisation
    SUBMITTED = "submitted"  # signed; the carrier asks the donor
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DELAYED = "delayed"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"  # "Opgeleverd": the numbers are ours
    CANCELLED = "cancelled"


PORT_FINAL = (PortState.REJECTED, PortState.COMPLETED, PortState.CANCELLED)


class PortRequest(Base):
    __tablename__ = "port_requests"
    __table_args__ = (Index("ix_port_requests_state_account", "state", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    state: Mapped[PortState] = mapped_column(_enum(PortState), default=PortState.DRAFT)
    company: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    street: Mapped[str] = mapped_column(String(200))
    house_number: Mapped[str] = mapped_column(String(10))
    house_addition: Mapped[str] = mapped_column(String(10), default="")
    postcode: Mapped[str] = mapped_column(String(10))
    city: Mapped[str] = mapped_column(String(100))
    donor: Mapped[str] = mapped_column(String(100))
    donor_customer: Mapped[str] = mapped_column(String(64), default="")
    contract: Mapped[str] = mapped_column(String(16))  # terminate | continue
    line_type: Mapped[str] = mapped_column(String(16))
    desired_date: Mapped[date] = mapped_column(Date)
    # The date agreed with the donor (scheduled) or expected now (delayed); None until then.
    port_date: Mapped[date | None] = mapped_column(Date)
    reason_code: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    warnings: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[Channel] = mapped_column(_enum(Channel))
    source_ref: Mapped[str | None] = mapped_column(String(400), unique=True)
    letter_signed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None]
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    dm_channel: Mapped[str | None] = mapped_column(String(32))
    dm_ts: Mapped[str | None] = mapped_column(String(32))
    staff_reminded_at: Mapped[datetime | None]
    customer_reminded_at: Mapped[datetime | None]
    customer_reminders: Mapped[int] = mapped_column(Integer, default=0)

    account: Mapped[Account] = relationship(lazy="joined")
    requester: Mapped[Person | None] = relationship(lazy="joined")
    ranges: Mapped[list[PortRange]] = relationship(
        order_by="PortRange.position", lazy="selectin", cascade="all, delete-orphan"
    )


class PortRange(Base):
    """One number (first == last) or range of a request, in E.164."""

    __tablename__ = "port_ranges"
    __table_args__ = (Index("ix_port_ranges_first_last", "first", "last"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("port_requests.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    first: Mapped[str] = mapped_column(String(32))
    last: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(Integer)


class PortEvent(Base):
    """One step of a request (made, letter, signed, a state change, a reminder) and its notices."""

    __tablename__ = "port_events"
    __table_args__ = (Index("ix_port_events_request", "request_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("port_requests.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[PortState] = mapped_column(_enum(PortState))
    actor_label: Mapped[str] = mapped_column(String(300))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    note: Mapped[str] = mapped_column(Text, default="")
    new_date: Mapped[date | None] = mapped_column(Date)
    # What made this step (a Slack modal, a confirmed mail): the same step is taken once.
    source_ref: Mapped[str | None] = mapped_column(String(400), unique=True)
    notify_staff: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_customer: Mapped[bool] = mapped_column(Boolean, default=True)
    mailed_at: Mapped[datetime | None]
    slack_claimed_at: Mapped[datetime | None]
    slack_done_at: Mapped[datetime | None]


class PortDocument(Base):
    """A signed letter of authorisation as it came back (Slack upload, mail, shell)."""

    __tablename__ = "port_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("port_requests.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(ForeignKey("port_events.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(300))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
