"""Alembic is the only way the schema is made: its head must equal the models."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.db import Base, make_engine
from tests.support import alembic_config, table_names

TABLES = {"jobs", "epoch_metrics", "checkpoints", "models", "model_tensors", "aliases",
          "sweeps", "sweep_trials", "iteration_losses", "activation_stats", "job_attempts"}


def _diff(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_migration_head_equals_models(database_url):
    assert _diff(database_url) == []
    assert TABLES <= table_names(database_url)


def test_downgrade_to_base_and_upgrade_again(database_url):
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "base")
    assert table_names(database_url) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert _diff(database_url) == []
