"""Alembic environment: runs on the connection that `c2bot.storage.db.upgrade` hands it."""

from alembic import context
from sqlalchemy import Connection

from c2bot.storage.models import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `c2bot db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
