"""Alembic environment: runs migrations with the Flask app's engine and metadata."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
# Keep the app's own loggers alive: Alembic's default would disable every existing logger.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def _db():
    return current_app.extensions["migrate"].db


config.set_main_option(
    "sqlalchemy.url",
    _db().engine.url.render_as_string(hide_password=False).replace("%", "%%"),
)
target_metadata = _db().metadata


def run_migrations_offline():
    """`moderation db upgrade --sql` (SQL to stdout instead of running it) cannot be had:
    several migrations read the data to decide what to write (0004 renames keys that
    share a name, 0006 and 0011 hash addresses again, 0010 links records to comments),
    and 0001 inserts JSON, which has no literal form. It failed deep in a migration with
    a traceback; now it says so at once."""
    raise SystemExit(
        "Error: these migrations read the database to decide what to write, so they "
        "cannot be printed as SQL; run `moderation init` against the database, after a "
        "backup (`moderation backup`, or pg_dump).")


def run_migrations_online():
    """Run migrations on a live connection."""

    def process_revision_directives(context, revision, directives):
        # An autogenerate with no schema change writes no empty revision file.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    with _db().engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
            # Each migration's own transaction checks what it leaves, before it commits.
            conf_args.setdefault("on_version_apply", _check_foreign_keys)
        try:
            context.configure(connection=connection, target_metadata=target_metadata,
                              **conf_args)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if sqlite:
                connection.rollback()  # what is left is what closing would roll back
                _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection, on):
    """SQLite rebuilds a table to change it (new table, copy, drop the old, rename), and
    with foreign keys enforced the drop first deletes, or cascades to, every row that
    refers to the old table. SQLite's own procedure turns them off for the change, and
    only outside a transaction does the pragma take effect: hence on the driver's
    connection, before the migrations' transaction begins (and back on after it, for the
    pooled connection is used again)."""
    connection.connection.dbapi_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _check_foreign_keys(ctx, **_):
    """What a migration leaves must still hold together; else it does not commit."""
    broken = ctx.connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration leaves rows that refer to nothing: {broken[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
