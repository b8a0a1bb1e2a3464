"""an Idempotency-Key's record names the comment it stored, so erasure finds every one

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

An erasure forgets the Idempotency-Keys its comments were posted with (each record keeps
a hash of the whole request: address, name, IP, text). It found them by the comment id
in the stored answer, and a hard rejection's answer is the generic 403, which names no
comment: those records outlived the erasure. The record now names its comment in a
column (deleted with the comment). Records stored before this are linked by the id in
their answer; a 403's cannot be, and goes at the retention age of Idempotency-Keys.
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('comment_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_idempotency_records_comment_id', 'comments',
                                    ['comment_id'], ['id'], ondelete='CASCADE')
        batch_op.create_index('ix_idempotency_records_comment_id', ['comment_id'])
    records = sa.table('idempotency_records', sa.column('id', sa.Integer),
                       sa.column('comment_id', sa.Integer), sa.column('response_body', sa.JSON))
    comments = sa.table('comments', sa.column('id', sa.Integer))
    connection = op.get_bind()
    existing = set(connection.scalars(sa.select(comments.c.id)))
    links = [
        {"record": record_id, "comment": body["id"]}
        for record_id, body in connection.execute(
            sa.select(records.c.id, records.c.response_body))
        if isinstance(body, dict) and body.get("id") in existing
    ]
    if links:
        connection.execute(
            sa.update(records).where(records.c.id == sa.bindparam("record"))
            .values(comment_id=sa.bindparam("comment")), links)


def downgrade():
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_records_comment_id')
        batch_op.drop_constraint('fk_idempotency_records_comment_id', type_='foreignkey')
        batch_op.drop_column('comment_id')
