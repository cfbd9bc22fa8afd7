"""replay: a run replayed from another links to it; a template remembers the workflow it was saved from

Revision ID: 0011_replay
Revises: 0010
Create Date: 2026-12-04 20:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_replay'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replay_of_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('replay_mode', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_workflow_execution_replay_of_id'), ['replay_of_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_workflow_execution_replay_of_id_workflow_execution'), 'workflow_execution', ['replay_of_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('workflow', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template_source_id', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_workflow_template_source_id_workflow'), 'workflow', ['template_source_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('workflow', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_workflow_template_source_id_workflow'), type_='foreignkey')
        batch_op.drop_column('template_source_id')

    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_workflow_execution_replay_of_id_workflow_execution'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_workflow_execution_replay_of_id'))
        batch_op.drop_column('replay_mode')
        batch_op.drop_column('replay_of_id')
