"""logistic half of the classifier: token weights, the bias, and each learned comment's step

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

The classifier blends Robinson-Fisher (the counts in classifier_tokens) with a logistic
regression learned online from the same decisions. Its weights sit beside the counts
(classifier_tokens.weight, and the bias in classifier_totals.weight), so judging a comment
reads them with the same two queries; classifier_steps keeps what each learned comment
added, so that un-learning takes exactly that back.
"""
import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('classifier_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('weight', sa.Float(), server_default='0', nullable=False))
    with op.batch_alter_table('classifier_totals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('weight', sa.Float(), server_default='0', nullable=False))
    op.create_table('classifier_steps',
    sa.Column('comment_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('comment_id')
    )


def downgrade():
    op.drop_table('classifier_steps')
    with op.batch_alter_table('classifier_totals', schema=None) as batch_op:
        batch_op.drop_column('weight')
    with op.batch_alter_table('classifier_tokens', schema=None) as batch_op:
        batch_op.drop_column('weight')
