"""Alembic environment: the URL comes from the settings (PARS_DATABASE_URL or the embedded default)."""

from __future__ import annotations

from alembic import context

from pars_ws.adapters.database import make_engine
from pars_ws.adapters.tables import metadata
from pars_ws.settings import Settings

config = context.config


def run_migrations_online() -> None:
    url = config.attributes.get("database_url") or Settings.from_env().database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def run_migrations_offline() -> None:
    url = config.attributes.get("database_url") or Settings.from_env().database_url
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
