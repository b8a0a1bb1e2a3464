"""email hashes of IDN domains as browsers and mail map them (UTS #46, nontransitional)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29

Host names are now mapped as the URL standard maps them, so `faß.example` is
`xn--fa-hia.example` (where browsers and IDNA 2008 mail go), not `fass.example` (IDNA
2003, Python's codec). The commenter's identity (trust, per-email limits, erasure and
export) is the HMAC of `identity.canonical_email`, which maps the domain so: an address
whose domain holds ß, ς or a zero-width joiner now hashes differently, and its earlier
comments would no longer be found by it. Only a domain that is not all ASCII can change,
so only those rows are hashed again, from the address each comment keeps (erased comments
keep none, and stay as they are).
"""
import sqlalchemy as sa
from alembic import op

from moderation.services.identity import email_hash

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BATCH = 1000


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
            if not address.rpartition("@")[2].isascii():
                connection.execute(sa.update(comments).where(comments.c.id == comment_id)
                                   .values(email_hash=email_hash(address)))
        after = rows[-1][0]


def downgrade():
    pass  # the old hashes named another domain than the one mail is delivered to
