"""fax bridge: dids, fax settings, senders, requests, jobs, received faxes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 22:32:40.110224
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_mail", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_login", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_inbound_mail_pending", ["outcome", "received_at"], unique=False)
    op.create_table(
        "dids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("forward_type", sa.String(length=16), nullable=True),
        sa.Column("destination", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_dids_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dids")),
        sa.UniqueConstraint("number", name=op.f("uq_dids_number")),
    )
    with op.batch_alter_table("dids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dids_account_id"), ["account_id"], unique=False)

    op.create_table(
        "fax_senders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("smtp_password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_fax_senders_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_senders")),
        sa.UniqueConstraint("email", name=op.f("uq_fax_senders_email")),
    )
    with op.batch_alter_table("fax_senders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_senders_account_id"), ["account_id"], unique=False)

    op.create_table(
        "fax_settings",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=True),
        sa.Column("imap_host", sa.String(length=255), nullable=True),
        sa.Column("imap_port", sa.Integer(), nullable=True),
        sa.Column("imap_user", sa.String(length=254), nullable=True),
        sa.Column("imap_password", sa.Text(), nullable=True),
        sa.Column("imap_tls", sa.Boolean(), nullable=True),
        sa.Column("server", sa.String(length=64), nullable=True),
        sa.Column("countries", sa.String(length=500), nullable=True),
        sa.Column("allow_premium", sa.Boolean(), nullable=True),
        sa.Column("daily_pages", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_fax_settings_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_fax_settings")),
    )
    op.create_table(
        "received_faxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_uuid", sa.String(length=64), nullable=False),
        sa.Column("did_number", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("caller_id", sa.String(length=64), nullable=False),
        sa.Column("remote_station_id", sa.String(length=100), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("result_code", sa.Integer(), nullable=True),
        sa.Column("result_text", sa.Text(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("tiff_path", sa.String(length=500), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_received_faxes_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_faxes")),
        sa.UniqueConstraint("call_uuid", name=op.f("uq_received_faxes_call_uuid")),
    )
    with op.batch_alter_table("received_faxes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_received_faxes_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "fax_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "slack", "email", "shell", "system", name="channel", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("source_ref", sa.String(length=400), nullable=True),
        sa.Column("sender_email", sa.String(length=254), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("caller_number", sa.String(length=32), nullable=False),
        sa.Column("caller_name", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("cover_text", sa.Text(), nullable=True),
        sa.Column("tiff_path", sa.String(length=500), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_fax_requests_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_fax_requests_person_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_requests")),
        sa.UniqueConstraint("source_ref", name=op.f("uq_fax_requests_source_ref")),
    )
    with op.batch_alter_table("fax_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fax_requests_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "fax_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=127), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["fax_requests.id"],
            name=op.f("fk_fax_documents_request_id_fax_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_documents")),
    )
    with op.batch_alter_table("fax_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fax_documents_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "fax_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "rendering",
                "dialing",
                "sending",
                "sent",
                "retry-wait",
                "failed",
                "cancelled",
                name="faxstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("call_uuid", sa.String(length=36), nullable=True),
        sa.Column("server", sa.String(length=64), nullable=True),
        sa.Column("result_code", sa.Integer(), nullable=True),
        sa.Column("result_text", sa.Text(), nullable=False),
        sa.Column("hangup_cause", sa.String(length=64), nullable=False),
        sa.Column("pages_sent", sa.Integer(), nullable=True),
        sa.Column("pages_total", sa.Integer(), nullable=True),
        sa.Column("remote_station_id", sa.String(length=100), nullable=False),
        sa.Column("bit_rate", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_fax_jobs_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["fax_requests.id"], name=op.f("fk_fax_jobs_request_id_fax_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_jobs")),
    )
    with op.batch_alter_table("fax_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_jobs_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_fax_jobs_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_fax_jobs_request_id"), ["request_id"], unique=False)

    op.create_table(
        "fax_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("call_uuid", sa.String(length=36), nullable=False),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("result_code", sa.Integer(), nullable=True),
        sa.Column("result_text", sa.Text(), nullable=False),
        sa.Column("hangup_cause", sa.String(length=64), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["fax_jobs.id"],
            name=op.f("fk_fax_attempts_job_id_fax_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_attempts")),
        sa.UniqueConstraint("call_uuid", name=op.f("uq_fax_attempts_call_uuid")),
    )
    with op.batch_alter_table("fax_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_attempts_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbound_mail", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_mail_pending")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("auth_login")
    with op.batch_alter_table("fax_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_attempts_job_id"))

    op.drop_table("fax_attempts")
    with op.batch_alter_table("fax_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_jobs_request_id"))
        batch_op.drop_index("ix_fax_jobs_due")
        batch_op.drop_index(batch_op.f("ix_fax_jobs_account_id"))

    op.drop_table("fax_jobs")
    with op.batch_alter_table("fax_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_documents_request_id"))

    op.drop_table("fax_documents")
    with op.batch_alter_table("fax_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_requests_account_id"))

    op.drop_table("fax_requests")
    with op.batch_alter_table("received_faxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_received_faxes_account_id"))

    op.drop_table("received_faxes")
    op.drop_table("fax_settings")
    with op.batch_alter_table("fax_senders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_senders_account_id"))

    op.drop_table("fax_senders")
    with op.batch_alter_table("dids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dids_account_id"))

    op.drop_table("dids")
