"""porting: port requests, ranges, events and signed letters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:28:04.187095
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "port_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "submitted",
                "accepted",
                "rejected",
                "delayed",
                "scheduled",
                "completed",
                "cancelled",
                name="portstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=False),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("house_number", sa.String(length=10), nullable=False),
        sa.Column("house_addition", sa.String(length=10), nullable=False),
        sa.Column("postcode", sa.String(length=10), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("donor", sa.String(length=100), nullable=False),
        sa.Column("donor_customer", sa.String(length=64), nullable=False),
        sa.Column("contract", sa.String(length=16), nullable=False),
        sa.Column("line_type", sa.String(length=16), nullable=False),
        sa.Column("desired_date", sa.Date(), nullable=False),
        sa.Column("port_date", sa.Date(), nullable=True),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "slack", "email", "shell", "system", name="channel", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("source_ref", sa.String(length=400), nullable=True),
        sa.Column("letter_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slack_channel", sa.String(length=32), nullable=True),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.Column("dm_channel", sa.String(length=32), nullable=True),
        sa.Column("dm_ts", sa.String(length=32), nullable=True),
        sa.Column("staff_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customer_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customer_reminders", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_port_requests_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["people.id"], name=op.f("fk_port_requests_requester_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_requests")),
        sa.UniqueConstraint("source_ref", name=op.f("uq_port_requests_source_ref")),
    )
    with op.batch_alter_table("port_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_port_requests_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            "ix_port_requests_state_account", ["state", "account_id"], unique=False
        )

    op.create_table(
        "port_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "submitted",
                "accepted",
                "rejected",
                "delayed",
                "scheduled",
                "completed",
                "cancelled",
                name="portstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("actor_label", sa.String(length=300), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "slack", "email", "shell", "system", name="channel", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("new_date", sa.Date(), nullable=True),
        sa.Column("source_ref", sa.String(length=400), nullable=True),
        sa.Column("notify_staff", sa.Boolean(), nullable=False),
        sa.Column("notify_customer", sa.Boolean(), nullable=False),
        sa.Column("mailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slack_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slack_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["port_requests.id"],
            name=op.f("fk_port_events_request_id_port_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_events")),
        sa.UniqueConstraint("source_ref", name=op.f("uq_port_events_source_ref")),
    )
    with op.batch_alter_table("port_events", schema=None) as batch_op:
        batch_op.create_index("ix_port_events_request", ["request_id", "id"], unique=False)

    op.create_table(
        "port_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("first", sa.String(length=32), nullable=False),
        sa.Column("last", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["port_requests.id"],
            name=op.f("fk_port_ranges_request_id_port_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_ranges")),
    )
    with op.batch_alter_table("port_ranges", schema=None) as batch_op:
        batch_op.create_index("ix_port_ranges_first_last", ["first", "last"], unique=False)
        batch_op.create_index(batch_op.f("ix_port_ranges_request_id"), ["request_id"], unique=False)

    op.create_table(
        "port_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=127), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=300), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "slack", "email", "shell", "system", name="channel", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["port_events.id"], name=op.f("fk_port_documents_event_id_port_events")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["port_requests.id"],
            name=op.f("fk_port_documents_request_id_port_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_documents")),
    )
    with op.batch_alter_table("port_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_port_documents_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("port_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_port_documents_request_id"))

    op.drop_table("port_documents")
    with op.batch_alter_table("port_ranges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_port_ranges_request_id"))
        batch_op.drop_index("ix_port_ranges_first_last")

    op.drop_table("port_ranges")
    with op.batch_alter_table("port_events", schema=None) as batch_op:
        batch_op.drop_index("ix_port_events_request")

    op.drop_table("port_events")
    with op.batch_alter_table("port_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_port_requests_state_account")
        batch_op.drop_index(batch_op.f("ix_port_requests_account_id"))

    op.drop_table("port_requests")
