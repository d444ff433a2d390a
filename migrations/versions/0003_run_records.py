"""Run records for the dashboard: per-iteration losses, activation statistics, attempts.

Reviewed against service/db/models.py. Three new tables, each keyed to jobs with ON DELETE
CASCADE and unique per (job, iteration | epoch+layer | attempt), so a resumed epoch replaces
its rows instead of adding to them. Nothing existing is altered: jobs trained before this
revision simply have no rows here. Works on SQLite and PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:12:40.118204
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('iteration_losses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('iteration', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('loss', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_iteration_losses_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_iteration_losses')),
    sa.UniqueConstraint('job_id', 'iteration', name=op.f('uq_iteration_losses_job_id_iteration'))
    )
    op.create_table('activation_stats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('layer', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('probe_size', sa.Integer(), nullable=False),
    sa.Column('mean', sa.Float(), nullable=True),
    sa.Column('std', sa.Float(), nullable=True),
    sa.Column('edges', sa.JSON(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_activation_stats_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activation_stats')),
    sa.UniqueConstraint('job_id', 'epoch', 'layer', name=op.f('uq_activation_stats_job_id_epoch_layer'))
    )
    op.create_table('job_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('resumed_from_epoch', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.CheckConstraint("outcome IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'pruned', 'lost')", name=op.f('ck_job_attempts_outcome')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_attempts_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_attempts')),
    sa.UniqueConstraint('job_id', 'attempt', name=op.f('uq_job_attempts_job_id_attempt'))
    )


def downgrade() -> None:
    op.drop_table('job_attempts')
    op.drop_table('activation_stats')
    op.drop_table('iteration_losses')
