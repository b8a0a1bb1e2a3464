"""the database records which server secret keyed its hashes, so an instance with another is refused

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29

Email hashes (trust, limits, erasure, export) are HMACs under the server secret, which
each instance generates into its own folder unless MODERATION_SECRET_KEY is set. Two
instances on one database with different secrets hashed each address differently: an
erasure run from one reported success and left the other's comments in place. The table
holds a fingerprint of the secret (an HMAC of a fixed text), written by `moderation init`
and compared by it, by the readiness probe and by the privacy commands.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'secret_fingerprint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade():
    op.drop_table('secret_fingerprint')
