"""draft pending secrets: credentials typed in the editor wait, encrypted, for the draft's save

Revision ID: 0013_draft_pending_secrets
Revises: 0012_run_guards
Create Date: 2026-12-04 20:30:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0013_draft_pending_secrets'
down_revision = '0012_run_guards'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workflow_draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_secrets', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))


def downgrade():
    with op.batch_alter_table('workflow_draft', schema=None) as batch_op:
        batch_op.drop_column('pending_secrets')
