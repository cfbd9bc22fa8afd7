"""engine: execution leases, attempts, worker heartbeats, processed events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:55:08.781861

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('worker_heartbeat',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_heartbeat'))
    )
    op.create_table('execution_attempt',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('execution_id', sa.String(length=32), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('request', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['execution_id'], ['workflow_execution.id'], name=op.f('fk_execution_attempt_execution_id_workflow_execution'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_execution_attempt'))
    )
    with op.batch_alter_table('execution_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_execution_attempt_execution_id_id'), ['execution_id', 'id'], unique=False)

    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_incident_event_processed_at_id'), ['processed_at', 'id'], unique=False)

    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trigger_key', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('triggered_by_user_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('parked_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempt', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('working_ms', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('row_version', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_workflow_execution_due_at'), ['due_at'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_workflow_execution_trigger_key'), ['trigger_key'])
        batch_op.create_foreign_key(batch_op.f('fk_workflow_execution_triggered_by_user_id_user_account'), 'user_account', ['triggered_by_user_id'], ['id'], ondelete='SET NULL')




def downgrade():

    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_workflow_execution_triggered_by_user_id_user_account'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_workflow_execution_trigger_key'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_workflow_execution_due_at'))
        batch_op.drop_column('row_version')
        batch_op.drop_column('working_ms')
        batch_op.drop_column('attempt')
        batch_op.drop_column('parked_until')
        batch_op.drop_column('lease_owner')
        batch_op.drop_column('due_at')
        batch_op.drop_column('triggered_by_user_id')
        batch_op.drop_column('trigger_key')

    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_event_processed_at_id'))
        batch_op.drop_column('processed_at')

    with op.batch_alter_table('execution_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_execution_attempt_execution_id_id'))

    op.drop_table('execution_attempt')
    op.drop_table('worker_heartbeat')

