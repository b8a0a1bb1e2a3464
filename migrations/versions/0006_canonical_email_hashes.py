"""email hashes of the canonical address: an IDN domain hashes alike in Unicode and punycode

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

The commenter's identity (trust, per-email limits, erasure and export) was the HMAC of the
lower-cased address as typed, so `zoe@bücher.example`, `zoe@xn--bcher-kva.example` and a
decomposed `ü` were three commenters, and an erasure asked for one of them missed the
others. It is now the HMAC of `identity.canonical_email`. That changes nothing for an
address that is all ASCII without punycode, so only the other rows are hashed again, from
the address each comment keeps (erased comments keep none, and stay as they are).
"""
import sqlalchemy as sa
from alembic import op

from moderation.services.identity import email_hash

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BATCH = 1000


def _may_change(address: str) -> bool:
    return not address.isascii() or "xn--" in address.lower()


def upgrade():
    comments = sa.table("comments", sa.column("id", sa.Integer),
                        sa.column("author_email", sa.String), sa.column("email_hash", sa.String))
    connection = op.get_bind()
    after = 0
    while rows := connection.execute(
        sa.select(comments.c.id, comments.c.author_email)
        .where(comments.c.id > after, comments.c.author_email != "")
        .order_by(comments.c.id).limit(BATCH)
    ).all():
        for comment_id, address in rows:
            if _may_change(address):
                connection.execute(sa.update(comments).where(comments.c.id == comment_id)
                                   .values(email_hash=email_hash(address)))
        after = rows[-1][0]


def downgrade():
    pass  # the old hashes are not needed back: they found fewer of a commenter's comments
