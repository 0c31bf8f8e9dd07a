"""routing: devices, recordings, ring groups, queues, conferences, IVRs, time conditions, change log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 01:15:17.092966
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "call_queues",
        sa.Column("strategy", sa.String(length=40), nullable=False),
        sa.Column("moh", sa.String(length=64), nullable=False),
        sa.Column("agent_tone", sa.String(length=64), nullable=False),
        sa.Column("customer_tone", sa.String(length=64), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("failover_type", sa.String(length=16), nullable=False),
        sa.Column("failover_value", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_call_queues_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_queues")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_call_queues_account_id")),
    )
    with op.batch_alter_table("call_queues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_queues_account_id"), ["account_id"], unique=False)

    op.create_table(
        "conference_profiles",
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_conference_profiles_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conference_profiles")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_conference_profiles_account_id")),
    )
    with op.batch_alter_table("conference_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conference_profiles_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "conferences",
        sa.Column("greeting", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("pin", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_conferences_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conferences")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_conferences_account_id")),
    )
    with op.batch_alter_table("conferences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conferences_account_id"), ["account_id"], unique=False)

    op.create_table(
        "ivrs",
        sa.Column("greeting", sa.String(length=64), nullable=False),
        sa.Column("invalid_sound", sa.String(length=64), nullable=False),
        sa.Column("exit_sound", sa.String(length=64), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("direct_dial", sa.Boolean(), nullable=False),
        sa.Column("cid_name_prefix", sa.String(length=32), nullable=False),
        sa.Column("ringback", sa.String(length=64), nullable=False),
        sa.Column("failover_type", sa.String(length=16), nullable=False),
        sa.Column("failover_value", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ivrs_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivrs")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_ivrs_account_id")),
    )
    with op.batch_alter_table("ivrs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ivrs_account_id"), ["account_id"], unique=False)

    op.create_table(
        "recordings",
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_recordings_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_recordings_account_id")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recordings_account_id"), ["account_id"], unique=False)

    op.create_table(
        "ring_groups",
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("announcement", sa.String(length=64), nullable=False),
        sa.Column("ringback", sa.String(length=64), nullable=False),
        sa.Column("cid_name_prefix", sa.String(length=32), nullable=False),
        sa.Column("cid_number_prefix", sa.String(length=16), nullable=False),
        sa.Column("recording", sa.String(length=8), nullable=False),
        sa.Column("skip_busy", sa.Boolean(), nullable=False),
        sa.Column("noanswer_type", sa.String(length=16), nullable=False),
        sa.Column("noanswer_value", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ring_groups_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ring_groups")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_ring_groups_account_id")),
    )
    with op.batch_alter_table("ring_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ring_groups_account_id"), ["account_id"], unique=False)

    op.create_table(
        "routing_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_key", sa.String(length=300), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_key", sa.String(length=100), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_routing_changes_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_changes")),
    )
    with op.batch_alter_table("routing_changes", schema=None) as batch_op:
        batch_op.create_index("ix_routing_changes_actor", ["actor_key", "id"], unique=False)

    op.create_table(
        "sip_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("extension", sa.String(length=16), nullable=False),
        sa.Column("password_sealed", sa.Text(), nullable=False),
        sa.Column("caller_number", sa.String(length=32), nullable=False),
        sa.Column("caller_name", sa.String(length=100), nullable=False),
        sa.Column("voicemail", sa.Boolean(), nullable=False),
        sa.Column("voicemail_pin", sa.String(length=16), nullable=False),
        sa.Column("voicemail_email", sa.String(length=254), nullable=False),
        sa.Column("codecs", sa.String(length=200), nullable=False),
        sa.Column("record_calls", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sip_devices_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_devices")),
        sa.UniqueConstraint("account_id", "extension", name=op.f("uq_sip_devices_account_id")),
        sa.UniqueConstraint("username", name=op.f("uq_sip_devices_username")),
    )
    with op.batch_alter_table("sip_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_devices_account_id"), ["account_id"], unique=False)

    op.create_table(
        "time_conditions",
        sa.Column("force", sa.String(length=8), nullable=False),
        sa.Column("forced_by", sa.String(length=300), nullable=False),
        sa.Column("forced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failover_type", sa.String(length=16), nullable=False),
        sa.Column("failover_value", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_time_conditions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_conditions")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_time_conditions_account_id")),
    )
    with op.batch_alter_table("time_conditions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_time_conditions_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "conference_controls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("digits", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["conference_profiles.id"],
            name=op.f("fk_conference_controls_profile_id_conference_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conference_controls")),
        sa.UniqueConstraint("profile_id", "digits", name=op.f("uq_conference_controls_profile_id")),
    )
    op.create_table(
        "ivr_options",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ivr_id", sa.Integer(), nullable=False),
        sa.Column("digit", sa.String(length=1), nullable=False),
        sa.Column("dest_type", sa.String(length=16), nullable=False),
        sa.Column("dest_value", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["ivr_id"], ["ivrs.id"], name=op.f("fk_ivr_options_ivr_id_ivrs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_options")),
        sa.UniqueConstraint("ivr_id", "digit", name=op.f("uq_ivr_options_ivr_id")),
    )
    op.create_table(
        "queue_agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["call_queues.id"],
            name=op.f("fk_queue_agents_queue_id_call_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_agents")),
        sa.UniqueConstraint("queue_id", "target", name=op.f("uq_queue_agents_queue_id")),
    )
    op.create_table(
        "ring_group_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("delay", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["ring_groups.id"],
            name=op.f("fk_ring_group_members_group_id_ring_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ring_group_members")),
    )
    with op.batch_alter_table("ring_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ring_group_members_group_id"), ["group_id"], unique=False
        )

    op.create_table(
        "time_condition_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("condition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("end_time", sa.String(length=5), nullable=False),
        sa.Column("weekdays", sa.String(length=16), nullable=False),
        sa.Column("monthdays", sa.String(length=8), nullable=False),
        sa.Column("months", sa.String(length=8), nullable=False),
        sa.Column("years", sa.String(length=10), nullable=False),
        sa.Column("holiday_country", sa.String(length=8), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("dest_type", sa.String(length=16), nullable=False),
        sa.Column("dest_value", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["condition_id"],
            ["time_conditions.id"],
            name=op.f("fk_time_condition_rows_condition_id_time_conditions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_condition_rows")),
    )
    with op.batch_alter_table("time_condition_rows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_time_condition_rows_condition_id"), ["condition_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("time_condition_rows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_time_condition_rows_condition_id"))

    op.drop_table("time_condition_rows")
    with op.batch_alter_table("ring_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ring_group_members_group_id"))

    op.drop_table("ring_group_members")
    op.drop_table("queue_agents")
    op.drop_table("ivr_options")
    op.drop_table("conference_controls")
    with op.batch_alter_table("time_conditions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_time_conditions_account_id"))

    op.drop_table("time_conditions")
    with op.batch_alter_table("sip_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_devices_account_id"))

    op.drop_table("sip_devices")
    with op.batch_alter_table("routing_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_changes_actor")

    op.drop_table("routing_changes")
    with op.batch_alter_table("ring_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ring_groups_account_id"))

    op.drop_table("ring_groups")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recordings_account_id"))

    op.drop_table("recordings")
    with op.batch_alter_table("ivrs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ivrs_account_id"))

    op.drop_table("ivrs")
    with op.batch_alter_table("conferences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conferences_account_id"))

    op.drop_table("conferences")
    with op.batch_alter_table("conference_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conference_profiles_account_id"))

    op.drop_table("conference_profiles")
    with op.batch_alter_table("call_queues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_queues_account_id"))

    op.drop_table("call_queues")
