"""Whether the database's schema is the one this code's migrations lead to."""

from __future__ import annotations

import enum
import functools

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from moderation import migrations_directory


class SchemaState(enum.Enum):
    CURRENT = "ok"
    MISSING = "not migrated"
    BEHIND = "behind the code"
    AHEAD = "ahead of the code"


# What the operator should do about each state but CURRENT, in one sentence.
ADVICE = {
    SchemaState.MISSING: "The database is not migrated: run `moderation init`.",
    SchemaState.BEHIND: "The database's schema is older than this code: run `moderation init`.",
    SchemaState.AHEAD: "The database's schema is newer than this code: deploy the release "
                       "that migrated it.",
}


@functools.cache
def _revisions(directory: str) -> tuple[frozenset[str], frozenset[str]]:
    """The migrations' heads and every revision they hold, read from disk once a process:
    the files do not change while it runs, and a probe every few seconds should not parse them."""
    script = ScriptDirectory(directory)
    known = frozenset(revision.revision for revision in script.walk_revisions())
    return frozenset(script.get_heads()), known


def schema_state(connection: sa.Connection) -> SchemaState:
    """Compare the revisions in the database's alembic_version with the migrations' heads."""
    # Read here rather than through Alembic's MigrationContext, which logs two INFO lines
    # each time it is set up: the probe would write them every few seconds.
    current: frozenset[str] = frozenset()
    if sa.inspect(connection).has_table("alembic_version"):
        current = frozenset(connection.scalars(sa.text("SELECT version_num FROM alembic_version")))
    heads, known = _revisions(migrations_directory())
    if not current:
        return SchemaState.MISSING
    if current == heads:
        return SchemaState.CURRENT
    if current - known:
        return SchemaState.AHEAD
    return SchemaState.BEHIND
