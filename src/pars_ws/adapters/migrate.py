"""Running the Alembic migrations shipped in the package (pars_ws/migrations) from code (`pars-ws db
upgrade`, `serve`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from ..resources import package_dir


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(package_dir("migrations")))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
