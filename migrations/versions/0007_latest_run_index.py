"""index workflow_execution (workflow_id, created_at): a workflow's latest run

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 13:23:06.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflow_execution_workflow_id_created_at'), ['workflow_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflow_execution_workflow_id_created_at'))
