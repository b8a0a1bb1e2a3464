"""the audit log names the thread a moderator closed or opened

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

Closing a thread to new comments (PUT /api/v1/moderation/threads) left no trace: the
audit log, where the service answers for every moderation decision, could not say who
closed a page or when. Those actions are logged now ("close", "open"), naming the thread
by its key. A comment's decisions leave it NULL: the comment id names them.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread', sa.String(length=512), nullable=True))


def downgrade():
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('thread')
