"""Lineage and reproduction: model_lineage (one row per model) and reproductions.

Reviewed against service/db/models.py. Two new tables keyed to models (ON DELETE CASCADE);
nothing existing is altered, so models stored before this revision stay valid: they simply
have no lineage row, and the API shows what their job still knows. Works on SQLite and
PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09 09:20:11.402733
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('model_lineage',
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('expanded_spec', sa.JSON(), nullable=False),
    sa.Column('seeds', sa.JSON(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('environment', sa.JSON(), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('sweep_id', sa.Integer(), nullable=True),
    sa.Column('trial_index', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.JSON(), nullable=False),
    sa.Column('wall_seconds', sa.Float(), nullable=True),
    sa.Column('train_seconds', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("source IN ('trained', 'imported')", name=op.f('ck_model_lineage_source')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_model_lineage_model_id_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_id', name=op.f('pk_model_lineage'))
    )
    op.create_table('reproductions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('original_model_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('tensors', sa.JSON(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("verdict IN ('pending', 'identical', 'differs')", name=op.f('ck_reproductions_verdict')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_reproductions_job_id_jobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_reproductions_model_id_models'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['original_model_id'], ['models.id'], name=op.f('fk_reproductions_original_model_id_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reproductions')),
    sa.UniqueConstraint('job_id', name=op.f('uq_reproductions_job_id'))
    )
    with op.batch_alter_table('reproductions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reproductions_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reproductions_original_model_id'), ['original_model_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reproductions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reproductions_original_model_id'))
        batch_op.drop_index(batch_op.f('ix_reproductions_model_id'))
    op.drop_table('reproductions')
    op.drop_table('model_lineage')
