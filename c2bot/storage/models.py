"""SQLAlchemy 2.0 models: accounts, people, cases, mail bookkeeping and the audit log.

Times are stored as UTC and always come back timezone-aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
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


MILLIONTH = Decimal("0.000001")


def exact(value: Decimal | int | str) -> Decimal:
    """A decimal rounded (half up) to the six places money and rates are stored with."""
    return Decimal(value).quantize(MILLIONTH, rounding=ROUND_HALF_UP)


class Fixed(TypeDecorator[Decimal]):
    """A decimal with six places (money, rates, percentages), stored exactly as a whole number
    of millionths: no float anywhere, and SUM() in SQL stays exact on SQLite and PostgreSQL.
    A sum or other aggregate is read back as `type_coerce(func.sum(col), Fixed)`."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("a float given to an exact decimal column; use Decimal")
        return int(exact(value).scaleb(6))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-6).quantize(MILLIONTH)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        Decimal: Fixed(),
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


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Billing(enum.StrEnum):
    PREPAID = "prepaid"  # calls while the balance lasts
    POSTPAID = "postpaid"  # calls while balance + credit limit lasts


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    company: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The rate group the account buys at: a reseller's customers at one of their reseller's
    # groups, resellers and the carrier's own customers at one of the carrier's.
    rate_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("rate_groups.id", use_alter=True), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The platform's customer fields (the rating and reports issue).
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.ACTIVE.value)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    mobile: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    province: Mapped[str] = mapped_column(String(100), default="")
    zip_code: Mapped[str] = mapped_column(String(20), default="")
    # Portal password, hashed (never stored or logged as given).
    password_hash: Mapped[str | None] = mapped_column(String(200))
    billing: Mapped[str] = mapped_column(String(16), default=Billing.PREPAID.value)
    balance: Mapped[Decimal] = mapped_column(default=Decimal(0))
    credit_limit: Mapped[Decimal] = mapped_column(default=Decimal(0))
    # 0: no limit.
    max_channels: Mapped[int] = mapped_column(Integer, default=0)
    cps: Mapped[int] = mapped_column(Integer, default=0)
    # The platform's `match/replace` rules, comma-separated (see c2bot.switch.translation).
    number_translation: Mapped[str] = mapped_column(String(500), default="")
    out_callerid_translation: Mapped[str] = mapped_column(String(500), default="")
    in_callerid_translation: Mapped[str] = mapped_column(String(500), default="")

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
    # What the account pays for the number (invoiced monthly; setup once, on its first invoice).
    setup_fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    monthly_fee: Mapped[Decimal] = mapped_column(default=Decimal(0))

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


# --- rating, call records, reports, orders and invoices ---------------------------------------
#
# Money, rates and percentages are `Decimal` in `Fixed` columns (millionths as integers).
# Durations are whole seconds. A rate group belongs to the carrier (account_id None: resellers
# and the carrier's direct customers buy at it) or to a reseller (its customers buy at it).


class RateGroup(Base):
    __tablename__ = "rate_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # The reseller that sells at this group; None: the carrier's.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    # Percent added to every rate of the group (10 = +10%).
    markup: Mapped[Decimal] = mapped_column(default=Decimal(0))
    # Defaults for rates that leave their increments empty, in seconds.
    initial_increment: Mapped[int] = mapped_column(Integer, default=1)
    increment: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[Account | None] = relationship(foreign_keys=[account_id], lazy="joined")
    trunks: Mapped[list[Trunk]] = relationship(
        secondary="rate_group_trunks", order_by="Trunk.precedence", lazy="selectin"
    )


class _RateColumns:
    """What a price per prefix is: origination (what an account pays) or termination (what a
    trunk costs). Empty increments take the rate group's (origination) or 1 s (termination)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(100), default="")
    connection_cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    grace_time: Mapped[int] = mapped_column(Integer, default=0)
    cost_per_minute: Mapped[Decimal] = mapped_column(default=Decimal(0))
    initial_increment: Mapped[int | None] = mapped_column(Integer)
    increment: Mapped[int | None] = mapped_column(Integer)


class OriginationRate(_RateColumns, Base):
    """A rate of a group, or (rate_group_id None) an account's own rate, which comes first."""

    __tablename__ = "origination_rates"
    __table_args__ = (
        UniqueConstraint("rate_group_id", "code"),
        UniqueConstraint("account_id", "code"),
    )

    rate_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("rate_groups.id", ondelete="CASCADE")
    )
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))


class Trunk(Base):
    """A way out to a carrier: a FreeSWITCH gateway (and failovers) with termination rates."""

    __tablename__ = "trunks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(100), default="")
    gateway: Mapped[str] = mapped_column(String(100))
    # Further gateways of the same trunk, comma-separated, tried in order after `gateway`.
    failover_gateways: Mapped[str] = mapped_column(String(500), default="")
    max_channels: Mapped[int] = mapped_column(Integer, default=0)
    # Lower goes first among trunks that cost the same.
    precedence: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RateGroupTrunk(Base):
    """The trunks a rate group's calls may leave by (least-cost routing picks among them)."""

    __tablename__ = "rate_group_trunks"

    rate_group_id: Mapped[int] = mapped_column(
        ForeignKey("rate_groups.id", ondelete="CASCADE"), primary_key=True
    )
    trunk_id: Mapped[int] = mapped_column(
        ForeignKey("trunks.id", ondelete="CASCADE"), primary_key=True
    )


class TerminationRate(_RateColumns, Base):
    __tablename__ = "termination_rates"
    # Least-cost routing looks a number's prefixes up across all of a group's trunks at once.
    __table_args__ = (
        UniqueConstraint("trunk_id", "code"),
        Index("ix_termination_rates_code", "code"),
    )

    trunk_id: Mapped[int] = mapped_column(ForeignKey("trunks.id", ondelete="CASCADE"))
    # Digits taken off the front of the number, then digits put before it, for this trunk.
    strip: Mapped[str] = mapped_column(String(32), default="")
    prepend: Mapped[str] = mapped_column(String(32), default="")


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    LOCAL = "local"


class CallType(enum.StrEnum):
    STANDARD = "STANDARD"
    DID = "DID"
    LOCAL = "LOCAL"
    FAX = "FAX"
    FREE = "FREE"


_BIG_ID = BigInteger().with_variant(Integer, "sqlite")


class CallRecord(Base):
    """One call (its A leg; FreeSWITCH posts one record per leg), rated once at every level.

    Money per level: `debit` is what the account pays; `cost` what that costs its seller (the
    reseller's own buy price for a reseller's customer, else the trunk's cost). The carrier's
    view: `carrier_debit` (what the top-level account pays) against `carrier_cost` (the trunk).
    """

    __tablename__ = "call_records"
    __table_args__ = (
        Index("ix_call_records_account_started", "account_id", "started_at", "id"),
        Index("ix_call_records_reseller_started", "reseller_id", "started_at", "id"),
        Index("ix_call_records_started", "started_at", "id"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    caller_id_number: Mapped[str] = mapped_column(String(64), default="")
    caller_id_name: Mapped[str] = mapped_column(String(100), default="")
    called_number: Mapped[str] = mapped_column(String(64), default="")
    sip_user: Mapped[str] = mapped_column(String(100), default="")
    direction: Mapped[str] = mapped_column(String(16))
    call_type: Mapped[str] = mapped_column(String(16))
    duration: Mapped[int] = mapped_column(Integer, default=0)
    billsec: Mapped[int] = mapped_column(Integer, default=0)
    hangup_cause: Mapped[str] = mapped_column(String(64), default="")
    hangup_cause_q850: Mapped[int | None] = mapped_column(Integer)
    # The matched prefix and its name (the account's origination rate), and the country.
    code: Mapped[str] = mapped_column(String(32), default="")
    destination: Mapped[str] = mapped_column(String(100), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    trunk_id: Mapped[int | None] = mapped_column(ForeignKey("trunks.id"))
    rate_group_id: Mapped[int | None] = mapped_column(ForeignKey("rate_groups.id"))
    debit: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    carrier_debit: Mapped[Decimal] = mapped_column(default=Decimal(0))
    carrier_cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    # Why a call is not charged or not fully rated ("" when rated as it should be).
    rating_note: Mapped[str] = mapped_column(String(200), default="")
    recording: Mapped[str] = mapped_column(String(500), default="")
    rated_at: Mapped[datetime | None]


class CallRollup(Base):
    """Summary figures per account, hour (UTC), code, trunk, direction and call type, kept as
    calls are rated: every figure composes (sums, counts, a maximum), so a report reads
    accounts x hours rows, not calls. `trunk_id` 0 means no trunk."""

    __tablename__ = "call_rollups"
    __table_args__ = (
        Index("ix_call_rollups_hour_account", "hour", "account_id"),
        Index("ix_call_rollups_reseller_hour", "reseller_id", "hour"),
    )

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    trunk_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), primary_key=True)
    call_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    reseller_id: Mapped[int | None] = mapped_column(Integer)
    destination: Mapped[str] = mapped_column(String(100), default="")
    attempted: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    duration: Mapped[int] = mapped_column(BigInteger, default=0)
    billable: Mapped[int] = mapped_column(BigInteger, default=0)
    longest: Mapped[int] = mapped_column(Integer, default=0)
    debit: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    carrier_debit: Mapped[Decimal] = mapped_column(default=Decimal(0))
    carrier_cost: Mapped[Decimal] = mapped_column(default=Decimal(0))


class _RollupFigures:
    """The composable figures every rollup keeps."""

    reseller_id: Mapped[int | None] = mapped_column(Integer)
    attempted: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    duration: Mapped[int] = mapped_column(BigInteger, default=0)
    billable: Mapped[int] = mapped_column(BigInteger, default=0)
    longest: Mapped[int] = mapped_column(Integer, default=0)
    debit: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    carrier_debit: Mapped[Decimal] = mapped_column(default=Decimal(0))
    carrier_cost: Mapped[Decimal] = mapped_column(default=Decimal(0))


class CallRollupDaily(_RollupFigures, Base):
    """The same figures per account, UTC day, direction and call type: a month of every account
    reads accounts x days rows (edge hours of another time zone come from `call_rollups`)."""

    __tablename__ = "call_rollups_daily"
    __table_args__ = (Index("ix_call_rollups_daily_reseller_day", "reseller_id", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), primary_key=True)
    call_type: Mapped[str] = mapped_column(String(16), primary_key=True)


class CallRollupTotal(_RollupFigures, Base):
    """Carrier-wide figures per UTC hour, direction and call type (staff time series);
    `reseller_id` is unused here."""

    __tablename__ = "call_rollups_total"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), primary_key=True)
    call_type: Mapped[str] = mapped_column(String(16), primary_key=True)


class CdrReject(Base):
    """A call record we could not take, kept as it came with the reason (see /healthz)."""

    __tablename__ = "cdr_rejects"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class OrderStatus(enum.StrEnum):
    NEW = "new"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Order(Base):
    """Something an account ordered (new numbers, a number port), followed up to delivery."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # did | porting | other
    description: Mapped[str] = mapped_column(String(500))
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus), default=OrderStatus.NEW)
    port_request_id: Mapped[int | None] = mapped_column(ForeignKey("port_requests.id"), unique=True)
    setup_fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    monthly_fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    created_by: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    delivered_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship(lazy="joined")


class Invoice(Base):
    """A month's invoice of one account: rated calls and recurring fees, with its PDF and CSV."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("account_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    issued_on: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(default=Decimal(0))
    vat_rate: Mapped[Decimal] = mapped_column(default=Decimal(0))
    vat: Mapped[Decimal] = mapped_column(default=Decimal(0))
    total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    cdr_csv: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(lazy="joined")
    lines: Mapped[list[InvoiceLine]] = relationship(
        order_by="InvoiceLine.position", lazy="selectin", cascade="all, delete-orphan"
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # calls | did | setup | order
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(default=Decimal(1))
    unit_price: Mapped[Decimal] = mapped_column(default=Decimal(0))
    amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
