"""Platform (users, teams, incidents) and the four workflow models of the seed.

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 09:19:38.846228

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    
    op.create_table('team',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('chat_channel', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
    sa.UniqueConstraint('name', name=op.f('uq_team_name'))
    )
    op.create_table('user_account',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    op.create_table('incident',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('priority', sa.Enum('P1', 'P2', 'P3', 'P4', 'P5', name='incident_priority', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('status', sa.Enum('TRIGGERED', 'ACKNOWLEDGED', 'RESOLVED', name='incident_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('service', sa.String(length=100), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('assignee_id', sa.String(length=32), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('escalation_level >= 0', name=op.f('ck_incident_escalation_level_not_negative')),
    sa.ForeignKeyConstraint(['assignee_id'], ['user_account.id'], name=op.f('fk_incident_assignee_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_incident_team_id_team'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident'))
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_service'), ['service'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_team_id_status'), ['team_id', 'status'], unique=False)

    op.create_table('team_membership',
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_team_membership_team_id_team'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_team_membership_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'user_id', name=op.f('pk_team_membership'))
    )
    with op.batch_alter_table('team_membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_membership_user_id'), ['user_id'], unique=False)

    op.create_table('workflow',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('scope_type', sa.Enum('team', 'global', name='scope_type', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('is_enabled', sa.Boolean(), nullable=False),
    sa.Column('is_template', sa.Boolean(), nullable=False),
    sa.Column('template_category', sa.Enum('Ticketing', 'Communication', 'Auto-resolution', name='template_category', native_enum=False, create_constraint=True), nullable=True),
    sa.Column('created_by_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(scope_type = 'team' AND team_id IS NOT NULL) OR (scope_type = 'global' AND team_id IS NULL)", name=op.f('ck_workflow_scope_matches_team')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_workflow_created_by_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_workflow_team_id_team'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow'))
    )
    with op.batch_alter_table('workflow', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflow_is_template_template_category'), ['is_template', 'template_category'], unique=False)
        batch_op.create_index(batch_op.f('ix_workflow_scope_type'), ['scope_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_workflow_team_id_is_enabled'), ['team_id', 'is_enabled'], unique=False)

    op.create_table('workflow_action_secret',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('workflow_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value_hash', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflow.id'], name=op.f('fk_workflow_action_secret_workflow_id_workflow'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_action_secret')),
    sa.UniqueConstraint('workflow_id', 'name', name=op.f('uq_workflow_action_secret_workflow_id_name'))
    )
    op.create_table('workflow_execution',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('workflow_id', sa.String(length=32), nullable=False),
    sa.Column('workflow_version', sa.Integer(), nullable=False),
    sa.Column('definition_snapshot', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('incident_id', sa.String(length=32), nullable=False),
    sa.Column('triggered_by', sa.Enum('event', 'manual', name='triggered_by', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('trigger_event', sa.Enum('incident_created', 'state_changed', 'escalation', 'age', name='trigger_event', native_enum=False, create_constraint=True), nullable=True),
    sa.Column('status', sa.Enum('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', name='execution_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('current_node_id', sa.String(length=64), nullable=True),
    sa.Column('completed_nodes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_workflow_execution_incident_id_incident'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflow.id'], name=op.f('fk_workflow_execution_workflow_id_workflow'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_execution'))
    )
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflow_execution_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_workflow_execution_status_created_at'), ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_workflow_execution_workflow_id_status'), ['workflow_id', 'status'], unique=False)

    op.create_table('workflow_version',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('workflow_id', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('changed_by_id', sa.String(length=32), nullable=False),
    sa.Column('change_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['user_account.id'], name=op.f('fk_workflow_version_changed_by_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflow.id'], name=op.f('fk_workflow_version_workflow_id_workflow'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_version')),
    sa.UniqueConstraint('workflow_id', 'version', name=op.f('uq_workflow_version_workflow_id_version'))
    )



def downgrade():
    
    op.drop_table('workflow_version')
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflow_execution_workflow_id_status'))
        batch_op.drop_index(batch_op.f('ix_workflow_execution_status_created_at'))
        batch_op.drop_index(batch_op.f('ix_workflow_execution_incident_id'))

    op.drop_table('workflow_execution')
    op.drop_table('workflow_action_secret')
    with op.batch_alter_table('workflow', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflow_team_id_is_enabled'))
        batch_op.drop_index(batch_op.f('ix_workflow_scope_type'))
        batch_op.drop_index(batch_op.f('ix_workflow_is_template_template_category'))

    op.drop_table('workflow')
    with op.batch_alter_table('team_membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_membership_user_id'))

    op.drop_table('team_membership')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_team_id_status'))
        batch_op.drop_index(batch_op.f('ix_incident_service'))
        batch_op.drop_index(batch_op.f('ix_incident_created_at'))
        batch_op.drop_index(batch_op.f('ix_incident_assignee_id'))

    op.drop_table('incident')
    op.drop_table('user_account')
    op.drop_table('team')

