"""celery backend: deliveries that began a run's current step

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_deliveries', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.drop_column('step_deliveries')
