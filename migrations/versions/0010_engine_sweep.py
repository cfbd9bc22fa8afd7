"""engine sweep: when the due-work sweep (beat's dispatch_due, the embedded worker's pass) last ran

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('engine_sweep',
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('backend', name=op.f('pk_engine_sweep'))
    )


def downgrade():
    op.drop_table('engine_sweep')
