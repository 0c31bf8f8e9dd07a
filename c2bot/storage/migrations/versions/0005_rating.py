"""Rating, call records and their rollup, customers' fields, orders and invoices.

Accounts named their rate group as free text; the names become rate groups of the carrier.
Money columns hold millionths as whole numbers (models.Fixed).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 19:48:29.330834
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_rollups_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("call_type", sa.String(length=16), nullable=False),
        sa.Column("reseller_id", sa.Integer(), nullable=True),
        sa.Column("attempted", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("duration", sa.BigInteger(), nullable=False),
        sa.Column("billable", sa.BigInteger(), nullable=False),
        sa.Column("longest", sa.Integer(), nullable=False),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("carrier_debit", sa.BigInteger(), nullable=False),
        sa.Column("carrier_cost", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "account_id", "direction", "call_type", name=op.f("pk_call_rollups_daily")
        ),
    )
    with op.batch_alter_table("call_rollups_daily", schema=None) as batch_op:
        batch_op.create_index(
            "ix_call_rollups_daily_reseller_day", ["reseller_id", "day"], unique=False
        )

    op.create_table(
        "call_rollups_total",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("call_type", sa.String(length=16), nullable=False),
        sa.Column("reseller_id", sa.Integer(), nullable=True),
        sa.Column("attempted", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("duration", sa.BigInteger(), nullable=False),
        sa.Column("billable", sa.BigInteger(), nullable=False),
        sa.Column("longest", sa.Integer(), nullable=False),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("carrier_debit", sa.BigInteger(), nullable=False),
        sa.Column("carrier_cost", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hour", "direction", "call_type", name=op.f("pk_call_rollups_total")
        ),
    )
    op.create_table(
        "call_rollups",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("trunk_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("call_type", sa.String(length=16), nullable=False),
        sa.Column("reseller_id", sa.Integer(), nullable=True),
        sa.Column("destination", sa.String(length=100), nullable=False),
        sa.Column("attempted", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("duration", sa.BigInteger(), nullable=False),
        sa.Column("billable", sa.BigInteger(), nullable=False),
        sa.Column("longest", sa.Integer(), nullable=False),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("carrier_debit", sa.BigInteger(), nullable=False),
        sa.Column("carrier_cost", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id",
            "hour",
            "code",
            "trunk_id",
            "direction",
            "call_type",
            name=op.f("pk_call_rollups"),
        ),
    )
    with op.batch_alter_table("call_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_call_rollups_hour_account", ["hour", "account_id"], unique=False)
        batch_op.create_index(
            "ix_call_rollups_reseller_hour", ["reseller_id", "hour"], unique=False
        )

    op.create_table(
        "cdr_rejects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdr_rejects")),
    )
    with op.batch_alter_table("cdr_rejects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cdr_rejects_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "trunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("gateway", sa.String(length=100), nullable=False),
        sa.Column("failover_gateways", sa.String(length=500), nullable=False),
        sa.Column("max_channels", sa.Integer(), nullable=False),
        sa.Column("precedence", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trunks")),
        sa.UniqueConstraint("name", name=op.f("uq_trunks_name")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("vat_rate", sa.BigInteger(), nullable=False),
        sa.Column("vat", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("cdr_csv", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_invoices_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("account_id", "month", name=op.f("uq_invoices_account_id")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoices_account_id"), ["account_id"], unique=False)

    op.create_table(
        "rate_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("markup", sa.BigInteger(), nullable=False),
        sa.Column("initial_increment", sa.Integer(), nullable=False),
        sa.Column("increment", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_rate_groups_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_rate_groups_name")),
    )
    with op.batch_alter_table("rate_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_groups_account_id"), ["account_id"], unique=False)

    op.create_table(
        "termination_rates",
        sa.Column("trunk_id", sa.Integer(), nullable=False),
        sa.Column("strip", sa.String(length=32), nullable=False),
        sa.Column("prepend", sa.String(length=32), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=100), nullable=False),
        sa.Column("connection_cost", sa.BigInteger(), nullable=False),
        sa.Column("grace_time", sa.Integer(), nullable=False),
        sa.Column("cost_per_minute", sa.BigInteger(), nullable=False),
        sa.Column("initial_increment", sa.Integer(), nullable=True),
        sa.Column("increment", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trunk_id"],
            ["trunks.id"],
            name=op.f("fk_termination_rates_trunk_id_trunks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_termination_rates")),
        sa.UniqueConstraint("trunk_id", "code", name=op.f("uq_termination_rates_trunk_id")),
    )
    with op.batch_alter_table("termination_rates", schema=None) as batch_op:
        batch_op.create_index("ix_termination_rates_code", ["code"], unique=False)
    op.create_table(
        "call_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("reseller_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caller_id_number", sa.String(length=64), nullable=False),
        sa.Column("caller_id_name", sa.String(length=100), nullable=False),
        sa.Column("called_number", sa.String(length=64), nullable=False),
        sa.Column("sip_user", sa.String(length=100), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("call_type", sa.String(length=16), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("billsec", sa.Integer(), nullable=False),
        sa.Column("hangup_cause", sa.String(length=64), nullable=False),
        sa.Column("hangup_cause_q850", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("trunk_id", sa.Integer(), nullable=True),
        sa.Column("rate_group_id", sa.Integer(), nullable=True),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("carrier_debit", sa.BigInteger(), nullable=False),
        sa.Column("carrier_cost", sa.BigInteger(), nullable=False),
        sa.Column("rating_note", sa.String(length=200), nullable=False),
        sa.Column("recording", sa.String(length=500), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_call_records_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["rate_group_id"],
            ["rate_groups.id"],
            name=op.f("fk_call_records_rate_group_id_rate_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["reseller_id"], ["accounts.id"], name=op.f("fk_call_records_reseller_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["trunk_id"], ["trunks.id"], name=op.f("fk_call_records_trunk_id_trunks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_records")),
        sa.UniqueConstraint("uuid", name=op.f("uq_call_records_uuid")),
    )
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_call_records_account_started", ["account_id", "started_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_call_records_reseller_started", ["reseller_id", "started_at", "id"], unique=False
        )
        batch_op.create_index("ix_call_records_started", ["started_at", "id"], unique=False)

    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
    )
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoice_lines_invoice_id"), ["invoice_id"], unique=False
        )

    op.create_table(
        "origination_rates",
        sa.Column("rate_group_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=100), nullable=False),
        sa.Column("connection_cost", sa.BigInteger(), nullable=False),
        sa.Column("grace_time", sa.Integer(), nullable=False),
        sa.Column("cost_per_minute", sa.BigInteger(), nullable=False),
        sa.Column("initial_increment", sa.Integer(), nullable=True),
        sa.Column("increment", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_origination_rates_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rate_group_id"],
            ["rate_groups.id"],
            name=op.f("fk_origination_rates_rate_group_id_rate_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_origination_rates")),
        sa.UniqueConstraint("account_id", "code", name=op.f("uq_origination_rates_account_id")),
        sa.UniqueConstraint(
            "rate_group_id", "code", name=op.f("uq_origination_rates_rate_group_id")
        ),
    )
    op.create_table(
        "rate_group_trunks",
        sa.Column("rate_group_id", sa.Integer(), nullable=False),
        sa.Column("trunk_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rate_group_id"],
            ["rate_groups.id"],
            name=op.f("fk_rate_group_trunks_rate_group_id_rate_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trunk_id"],
            ["trunks.id"],
            name=op.f("fk_rate_group_trunks_trunk_id_trunks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rate_group_id", "trunk_id", name=op.f("pk_rate_group_trunks")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "new",
                "processing",
                "delivered",
                "cancelled",
                name="orderstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("port_request_id", sa.Integer(), nullable=True),
        sa.Column("setup_fee", sa.BigInteger(), nullable=False),
        sa.Column("monthly_fee", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_orders_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["port_request_id"],
            ["port_requests.id"],
            name=op.f("fk_orders_port_request_id_port_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("port_request_id", name=op.f("uq_orders_port_request_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_orders_reference")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_account_id"), ["account_id"], unique=False)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_group_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="active")
        )
        batch_op.add_column(
            sa.Column("first_name", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("last_name", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("phone", sa.String(length=40), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("mobile", sa.String(length=40), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("address", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("city", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("province", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("zip_code", sa.String(length=20), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("billing", sa.String(length=16), nullable=False, server_default="prepaid")
        )
        batch_op.add_column(
            sa.Column("balance", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("credit_limit", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("max_channels", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("cps", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "number_translation", sa.String(length=500), nullable=False, server_default=""
            )
        )
        batch_op.add_column(
            sa.Column(
                "out_callerid_translation", sa.String(length=500), nullable=False, server_default=""
            )
        )
        batch_op.add_column(
            sa.Column(
                "in_callerid_translation", sa.String(length=500), nullable=False, server_default=""
            )
        )
        batch_op.create_index(
            batch_op.f("ix_accounts_rate_group_id"), ["rate_group_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_accounts_rate_group_id_rate_groups"),
            "rate_groups",
            ["rate_group_id"],
            ["id"],
            use_alter=True,
        )

    _rate_group_names_to_groups()
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("rate_group")

    with op.batch_alter_table("dids", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("setup_fee", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("monthly_fee", sa.BigInteger(), nullable=False, server_default="0")
        )


def _rate_group_names_to_groups() -> None:
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.Integer()),
        sa.column("rate_group", sa.String()),
        sa.column("rate_group_id", sa.Integer()),
    )
    groups = sa.table(
        "rate_groups",
        sa.column("id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("description", sa.String()),
        sa.column("markup", sa.BigInteger()),
        sa.column("initial_increment", sa.Integer()),
        sa.column("increment", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    names = bind.execute(
        sa.select(accounts.c.rate_group).where(accounts.c.rate_group.is_not(None)).distinct()
    ).scalars()
    for name in sorted(n for n in names if n):
        bind.execute(
            groups.insert().values(
                name=name,
                description="",
                markup=0,
                initial_increment=1,
                increment=1,
                created_at=sa.func.current_timestamp(),
            )
        )
        found = bind.execute(sa.select(groups.c.id).where(groups.c.name == name)).scalar_one()
        bind.execute(
            accounts.update().where(accounts.c.rate_group == name).values(rate_group_id=found)
        )


def downgrade() -> None:
    op.drop_table("call_rollups_total")
    with op.batch_alter_table("call_rollups_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_call_rollups_daily_reseller_day")

    op.drop_table("call_rollups_daily")
    with op.batch_alter_table("dids", schema=None) as batch_op:
        batch_op.drop_column("monthly_fee")
        batch_op.drop_column("setup_fee")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_group", sa.VARCHAR(length=100), nullable=True))
        batch_op.drop_constraint(
            batch_op.f("fk_accounts_rate_group_id_rate_groups"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_accounts_rate_group_id"))
        batch_op.drop_column("in_callerid_translation")
        batch_op.drop_column("out_callerid_translation")
        batch_op.drop_column("number_translation")
        batch_op.drop_column("cps")
        batch_op.drop_column("max_channels")
        batch_op.drop_column("credit_limit")
        batch_op.drop_column("balance")
        batch_op.drop_column("billing")
        batch_op.drop_column("password_hash")
        batch_op.drop_column("zip_code")
        batch_op.drop_column("province")
        batch_op.drop_column("city")
        batch_op.drop_column("address")
        batch_op.drop_column("mobile")
        batch_op.drop_column("phone")
        batch_op.drop_column("last_name")
        batch_op.drop_column("first_name")
        batch_op.drop_column("status")
        batch_op.drop_column("rate_group_id")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_account_id"))

    op.drop_table("orders")
    op.drop_table("rate_group_trunks")
    op.drop_table("origination_rates")
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_lines_invoice_id"))

    op.drop_table("invoice_lines")
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.drop_index("ix_call_records_started")
        batch_op.drop_index("ix_call_records_reseller_started")
        batch_op.drop_index("ix_call_records_account_started")

    op.drop_table("call_records")
    with op.batch_alter_table("termination_rates", schema=None) as batch_op:
        batch_op.drop_index("ix_termination_rates_code")

    op.drop_table("termination_rates")
    with op.batch_alter_table("rate_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_groups_account_id"))

    op.drop_table("rate_groups")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_account_id"))

    op.drop_table("invoices")
    op.drop_table("trunks")
    with op.batch_alter_table("cdr_rejects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cdr_rejects_received_at"))

    op.drop_table("cdr_rejects")
    with op.batch_alter_table("call_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_call_rollups_reseller_hour")
        batch_op.drop_index("ix_call_rollups_hour_account")

    op.drop_table("call_rollups")
