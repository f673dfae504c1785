"""Alembic environment for the ledger, driven from `tasks.ledger.db` (there is no alembic.ini).

It deliberately does not call `logging.config.fileConfig`: migrations run inside flow runs,
and reconfiguring logging there would silence or duplicate the caller's handlers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext

from tasks.ledger.models import Base, UtcDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Write `UtcDateTime` columns as plain DDL so migrations never import the models."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        "render_as_batch": dialect_name == "sqlite",
        "render_item": render_item,
        "compare_type": True,
        "compare_server_default": False,
    }


def run_migrations_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline migrations need the 'sqlalchemy.url' option")
    dialect_name = sa.engine.make_url(url).get_backend_name()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(dialect_name),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: sa.Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        # The normal path: tasks.ledger.db.migrate passes a connection holding its lock.
        _run_with(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("pass a connection in config.attributes or set 'sqlalchemy.url'")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
