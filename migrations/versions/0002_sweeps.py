"""Sweeps: the sweeps table and one sweep_trials row per generated trial.

Reviewed against service/db/models.py. jobs.sweep_id stays a plain integer (no FK, so
no ALTER of jobs and no cycle with sweeps.best_job_id, also a plain integer);
sweep_trials.job_id is a unique FK to jobs, set once when the trial's job is made.
Works on SQLite and PostgreSQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:54:31.746115
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sweeps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('request', sa.JSON(), nullable=False),
    sa.Column('metric', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('best_job_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_sweeps_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sweeps')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sweeps_idempotency_key'))
    )
    op.create_index(op.f('ix_sweeps_status'), 'sweeps', ['status'], unique=False)

    op.create_table('sweep_trials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sweep_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_sweep_trials_job_id_jobs')),
    sa.ForeignKeyConstraint(['sweep_id'], ['sweeps.id'], name=op.f('fk_sweep_trials_sweep_id_sweeps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sweep_trials')),
    sa.UniqueConstraint('job_id', name=op.f('uq_sweep_trials_job_id')),
    sa.UniqueConstraint('sweep_id', 'index', name=op.f('uq_sweep_trials_sweep_id_index'))
    )


def downgrade() -> None:
    op.drop_table('sweep_trials')
    op.drop_index(op.f('ix_sweeps_status'), table_name='sweeps')
    op.drop_table('sweeps')
