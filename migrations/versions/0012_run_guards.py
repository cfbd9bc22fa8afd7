"""run guards and failure workflows: once per incident (a guard row per workflow and
incident), the loop guard's links (which run made an incident change, which run's change
started a run), the timeline's engine events (workflow skipped, workflow failed) and the
workflow_failed trigger event

Revision ID: 0012_run_guards
Revises: 0011_replay
Create Date: 2026-12-04 20:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_run_guards'
down_revision = '0011_replay'
branch_labels = None
depends_on = None

_OLD_EVENT_TYPES = (
    'incident_created', 'state_changed', 'escalation', 'priority_changed',
    'assignee_changed', 'service_changed', 'metadata_changed', 'details_changed',
)
_NEW_EVENT_TYPES = _OLD_EVENT_TYPES + ('workflow_skipped', 'workflow_failed')
_OLD_TRIGGER_EVENTS = ('incident_created', 'state_changed', 'escalation', 'age')
_NEW_TRIGGER_EVENTS = _OLD_TRIGGER_EVENTS + ('workflow_failed',)


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    op.create_table('workflow_incident_guard',
    sa.Column('workflow_id', sa.String(length=32), nullable=False),
    sa.Column('incident_id', sa.String(length=32), nullable=False),
    sa.Column('execution_id', sa.String(length=32), nullable=False),
    sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_workflow_incident_guard_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflow.id'], name=op.f('fk_workflow_incident_guard_workflow_id_workflow'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workflow_id', 'incident_id', name=op.f('pk_workflow_incident_guard'))
    )
    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('execution_id', sa.String(length=32), nullable=True))
        batch_op.drop_constraint(op.f('ck_incident_event_incident_event_type'), type_='check')
        batch_op.create_check_constraint('incident_event_type', _in('type', _NEW_EVENT_TYPES))
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caused_by_execution_id', sa.String(length=32), nullable=True))
        batch_op.drop_constraint(op.f('ck_workflow_execution_trigger_event'), type_='check')
        batch_op.create_check_constraint('trigger_event', _in('trigger_event', _NEW_TRIGGER_EVENTS))


def downgrade():
    op.execute("UPDATE workflow_execution SET trigger_event = NULL WHERE trigger_event = 'workflow_failed'")
    with op.batch_alter_table('workflow_execution', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_workflow_execution_trigger_event'), type_='check')
        batch_op.create_check_constraint('trigger_event', _in('trigger_event', _OLD_TRIGGER_EVENTS))
        batch_op.drop_column('caused_by_execution_id')
    op.execute("DELETE FROM incident_event WHERE type IN ('workflow_skipped', 'workflow_failed')")
    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_incident_event_incident_event_type'), type_='check')
        batch_op.create_check_constraint('incident_event_type', _in('type', _OLD_EVENT_TYPES))
        batch_op.drop_column('execution_id')
    op.drop_table('workflow_incident_guard')
