"""Alembic environment: the schema of service.db's models, on the configured database.

The URL comes from (first found) ``config.attributes["database_url"]`` (tests and
the CLI pass it that way), the ``sqlalchemy.url`` option, or the settings
(``NNQ_DATABASE_URL``, ``service.settings``). SQLite runs in batch mode so ALTERs work.
"""

from __future__ import annotations

import logging.config

from alembic import context

from service.db import Base, make_engine
from service.settings import normalize_url, settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    return normalize_url(url) if url else settings().database_url


def _configure(**kwargs) -> None:
    url = kwargs.pop("url", None)
    dialect = kwargs["connection"].dialect.name if "connection" in kwargs else None
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=(dialect or url.split(":", 1)[0]).startswith("sqlite"),
        compare_type=True,
        url=url,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
