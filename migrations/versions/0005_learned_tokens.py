"""the tokens each learned comment taught, so un-learning takes back exactly those

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Un-learning used to tokenise the comment's text again. After an upgrade that changes the
tokenizer or the normaliser, or a change to the fields the classifier rule reads, that
gave other tokens than the ones learned: a reversed decision then took counts off tokens
the comment never taught and left its own counted. classifier_steps now keeps the tokens
(a JSON list) with the step. Rows learned before this keep NULL, and are un-learned from
the text as before.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('classifier_steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tokens', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('classifier_steps', schema=None) as batch_op:
        batch_op.drop_column('tokens')
