"""the thread title and URL each comment came with, so only an approved one names its page

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

A thread took its public title (and URL) from the first comment the rules let through,
a comment held for a moderator included: a held stranger's "FREE CRYPTO at scam.example"
became the page's title at once, and stayed after the comment was marked spam. The title
is now taken from an approved comment (or the site's own backend) only. A comment held
for review keeps what it came with here, and names the page when a moderator approves it.
Rows stored before this keep NULL: they came with nothing that is still waiting.
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread_title', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('thread_url', sa.String(length=2048), nullable=True))


def downgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_column('thread_url')
        batch_op.drop_column('thread_title')
