"""comment ids are never handed out twice on SQLite: the comments table gets AUTOINCREMENT

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

Without AUTOINCREMENT, SQLite gives a new row the highest id in the table plus one, so
once `moderation purge` had deleted the newest comments, the next comment took the id of
a purged one. A moderator's page still open on the purged comment then decided the new
one: its ETag ("1", the version) matched, so the If-Match that guards decisions did not.
An Idempotency-Key retry answered with an id that now named someone else's comment.
PostgreSQL's sequences never hand an id out twice, so there this does nothing.

SQLite cannot add AUTOINCREMENT to a table, so the table is rebuilt (new table, rows
copied, old one dropped, new one renamed, indexes made again), in one transaction with
foreign keys off (migrations/env.py): enforced, dropping the old table would first
delete every row that refers to a comment. The ids already handed out twice before this
cannot be told apart now; the counter starts at the highest id in the table.
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _rebuild_comments(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("comments", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade():
    _rebuild_comments(autoincrement=True)


def downgrade():
    _rebuild_comments(autoincrement=False)
