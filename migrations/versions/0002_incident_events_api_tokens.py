"""Incident events (one per change, same transaction), API tokens, sign-in attempts; incident row_version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:23:46.518538

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('sign_in_attempt',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_attempt'))
    )
    with op.batch_alter_table('sign_in_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_attempt_email_created_at'), ['email', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sign_in_attempt_ip_created_at'), ['ip', 'created_at'], unique=False)

    op.create_table('api_token',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_api_token_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('incident_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.String(length=32), nullable=False),
    sa.Column('type', sa.Enum('incident_created', 'state_changed', 'escalation', 'priority_changed', 'assignee_changed', 'service_changed', 'metadata_changed', 'details_changed', name='incident_event_type', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('changes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('actor_id', sa.String(length=32), nullable=True),
    sa.Column('source', sa.Enum('web', 'api', 'system', name='change_source', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_incident_event_actor_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_event_incident_id_incident'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_event'))
    )
    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_event_incident_id_id'), ['incident_id', 'id'], unique=False)

    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('row_version', sa.Integer(), server_default='1', nullable=False))




def downgrade():

    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_column('row_version')

    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_event_incident_id_id'))

    op.drop_table('incident_event')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))

    op.drop_table('api_token')
    with op.batch_alter_table('sign_in_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_attempt_ip_created_at'))
        batch_op.drop_index(batch_op.f('ix_sign_in_attempt_email_created_at'))

    op.drop_table('sign_in_attempt')

