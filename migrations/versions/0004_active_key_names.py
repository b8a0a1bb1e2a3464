"""one active key per name: a partial unique index on api_keys(name) where not revoked

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

The audit log names each actor by key name, so two unrevoked keys must not share one.
The API checks before it inserts; this index makes the database refuse the second of two
keys created at the same moment too. Revoked keys keep their names (and may repeat them),
so the index covers unrevoked keys only (a partial index, on SQLite and PostgreSQL alike).
Unrevoked keys that already share a name (possible before this check existed) are told
apart first: every one after the first gets " (key <id>)" added to its name.
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

ACTIVE = sa.text("revoked_at IS NULL")


def upgrade():
    keys = sa.table("api_keys", sa.column("id", sa.Integer), sa.column("name", sa.String),
                    sa.column("revoked_at", sa.DateTime))
    connection = op.get_bind()
    seen: set[str] = set()
    rows = connection.execute(
        sa.select(keys.c.id, keys.c.name).where(keys.c.revoked_at.is_(None)).order_by(keys.c.id)
    ).all()
    # Every active name, so that a new one is none of them: keys named "ops", "ops" (id 2)
    # and "ops (key 2)" made the renamed second a third "ops (key 2)", and the index failed.
    taken = {name for _, name in rows}
    for key_id, name in rows:
        if name in seen:
            renamed, n = f"{name[:80]} (key {key_id})", 1
            while renamed in taken:
                n += 1
                renamed = f"{name[:76]} (key {key_id}, {n})"
            connection.execute(sa.update(keys).where(keys.c.id == key_id).values(name=renamed))
            taken.add(renamed)
        seen.add(name)
    op.create_index("uq_api_keys_active_name", "api_keys", ["name"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade():
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
