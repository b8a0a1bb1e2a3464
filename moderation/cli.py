"""The `moderation` command: set-up, keys, sites and rules from the shell."""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from flask_migrate import upgrade
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError, ProgrammingError

from moderation.config import make_private, new_private_file
from moderation.errors import ConfigError, SecretMismatch, ServiceError
from moderation.extensions import db
from moderation.models import CLI_ACTOR, Role, Site
from moderation.rules import RulesError, RuleSet, load_rules

# PostgreSQL's SQLSTATE for a table that does not exist (undefined_table).
UNDEFINED_TABLE = "42P01"


def register_commands(app: Flask) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(keys_group)
    app.cli.add_command(sites_group)
    app.cli.add_command(rules_group)
    app.cli.add_command(purge_command)
    app.cli.add_command(erase_command)
    app.cli.add_command(export_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(rekey_command)


def _fail(error: ServiceError) -> None:
    raise click.ClickException(error.message + _details(error.errors))


def _invalid(error: ValidationError) -> None:
    raise click.ClickException("Invalid: " + _details(error.messages).strip(" ()"))


def _details(errors: Any) -> str:
    """Field errors as `field: message; ...` in brackets, for one line of a terminal."""
    if not errors:
        return ""
    if not isinstance(errors, dict):
        return f" ({errors})"
    parts = []
    for field, messages in errors.items():
        if isinstance(messages, dict):  # a list field: its items' errors by index
            messages = [m for item in messages.values() for m in item]
        parts.append(f"{field}: {', '.join(map(str, messages))}")
    return f" ({'; '.join(parts)})"


class ModerationGroup(FlaskGroup):
    """The `moderation` command: a database that is away or not set up is one clear line,
    not a driver's traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as error:  # building the app reads the settings
            raise click.ClickException(str(error)) from None
        except SecretMismatch as error:  # init, and the commands that look commenters up
            raise click.ClickException(error.message) from None
        except RulesError as error:  # building the app loads the rules in force
            raise click.ClickException(
                "The rules file in force (MODERATION_RULES_FILE) does not load:\n"
                + "\n".join(error.messages or [str(error)])
            ) from None
        except (OperationalError, ProgrammingError) as error:
            # A missing table, not any "does not exist": PostgreSQL says that of a database
            # or a role too, which `moderation init` cannot create.
            if "no such table" in str(error.orig) or (
                    getattr(error.orig, "sqlstate", None) == UNDEFINED_TABLE):
                message = "The database is not set up yet: run `moderation init` first."
            else:
                message = (f"Cannot use the database ({type(error.orig).__name__}); "
                           "check DATABASE_URL and that the server is up.")
            raise click.ClickException(message) from None


# Any number, the same in every `moderation init`: the PostgreSQL advisory lock they take.
_INIT_LOCK = 0x6D6F6401


@contextlib.contextmanager
def _one_init_at_a_time():
    """On PostgreSQL, hold an advisory lock while migrating and making the first key:
    replicas of the image started together ran `init` at once, and all but one failed
    with a traceback (two migrations writing alembic_version). SQLite needs none: its
    migrations take the write lock."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    with db.engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:lock)"), {"lock": _INIT_LOCK})
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:lock)"), {"lock": _INIT_LOCK})
            connection.commit()


@click.command("init")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the first admin key to this new file (readable by its owner alone) "
                   "instead of printing it: a container's output goes to its log.")
@with_appcontext
def init_command(key_file: Path | None) -> None:
    """Migrate the database; on an empty one, create the first admin key and print it once."""
    from moderation.services import identity, keys

    with _one_init_at_a_time():
        with db.engine.connect() as connection:  # closed, and its lock let go, before upgrade
            identity.check_secret_before_migrating(connection)
        upgrade()
        identity.record_secret()
        default_database = Path(current_app.instance_path) / "moderation.sqlite3"
        if current_app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{default_database}":
            for path in make_private(default_database):
                click.echo(f"{path}: now readable by its owner alone (it holds emails and IPs)")
        if keys.has_admin_key():
            click.echo("Database ready.")
            return
        if key_file is not None:
            try:  # made before the key: a file that exists may be someone else's
                new_private_file(key_file)
            except OSError as error:
                raise click.ClickException(
                    f"Cannot create {key_file}: {error.strerror}.") from None
        try:
            _, secret = keys.create_key("first-admin", "admin", [])
        except ServiceError as error:  # an unrevoked non-admin key named "first-admin"
            if key_file is not None:
                key_file.unlink()
            _fail(error)
            return
    if key_file is None:
        click.echo("Database ready. The first admin key (shown once, keep it safe):")
        click.echo(f"  {secret}")
        return
    key_file.write_text(secret + "\n")
    click.echo(f"Database ready. The first admin key is in {key_file} (readable by its "
               "owner alone): read it, keep it safe, then delete the file.")


@click.group("keys", cls=AppGroup)
def keys_group() -> None:
    """Manage API keys."""


@keys_group.command("create")
@click.option("--name", required=True, help="Who or what uses the key; shown in the audit log.")
@click.option("--role", type=click.Choice(["admin", "moderator", "site"]), required=True)
@click.option("--site", "sites", multiple=True, help="A site slug (repeat for several).")
def create_key(name: str, role: str, sites: tuple[str, ...]) -> None:
    """Create a key and print its secret, once."""
    from moderation.schemas.admin import KeyRequestSchema
    from moderation.services import keys

    try:  # the API's checks (a name of 1 to 100 characters, trimmed)
        name = KeyRequestSchema().load({"name": name, "role": role, "sites": list(sites)})["name"]
    except ValidationError as error:
        _invalid(error)
    try:
        key, secret = keys.create_key(name, role, list(sites))
    except ServiceError as error:
        _fail(error)
        return
    click.echo(f"Created {key.role.value} key {key.id} ({key.name}). Its secret, shown once:")
    click.echo(secret)


@keys_group.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""
    from moderation.services import keys

    for key in keys.list_keys():
        state = "revoked" if key.revoked_at else "active"
        # An admin key serves every site ("*"); a moderator or site key whose sites were
        # all deleted serves none ("-"), which "*" would have read as all of them.
        sites = ",".join(site.slug for site in key.sites) or (
            "*" if key.role is Role.ADMIN else "-")
        click.echo(f"{key.id}\t{key.role.value}\t{key.name}\t{sites}\t{state}")


@click.group("sites", cls=AppGroup)
def sites_group() -> None:
    """Manage sites."""


@sites_group.command("create")
@click.argument("slug")
@click.option("--name", default="", help="A human name for the site.")
@click.option("--origin", "origins", multiple=True, help="An allowed origin, https://host.")
def create_site(slug: str, name: str, origins: tuple[str, ...]) -> None:
    """Add a site."""
    from moderation.schemas.admin import SiteSchema
    from moderation.services import sites

    try:
        data = SiteSchema().load({"slug": slug, "name": name, "allowed_origins": list(origins)})
    except ValidationError as error:
        _invalid(error)
    try:
        site = sites.create_site(data["slug"], data["name"], data["allowed_origins"])
    except ServiceError as error:
        _fail(error)
        return
    click.echo(f"Created site {site.slug}.")


@sites_group.command("delete")
@click.argument("slug")
@click.option("--delete-comments", is_flag=True,
              help="Delete the site's comments with it (else a site with comments stays).")
@click.option("--yes", is_flag=True, help="Do not ask before deleting comments.")
def delete_site(slug: str, delete_comments: bool, yes: bool) -> None:
    """Remove a site, as DELETE /api/v1/admin/sites/<slug> does; here without the web's
    statement timeout, for a site with many comments."""
    from moderation.services import sites

    if delete_comments and not yes:
        click.confirm(f"Delete the site {slug} and every comment on it? This cannot be "
                      "undone.", abort=True)
    try:
        sites.delete_site(slug, delete_comments)
    except ServiceError as error:
        _fail(error)
        return
    click.echo(f"Deleted site {slug}.")


@sites_group.command("list")
def list_sites() -> None:
    """List sites."""
    for site in db.session.scalars(sa.select(Site).order_by(Site.slug)):
        click.echo(f"{site.slug}\t{site.name}\t{' '.join(site.allowed_origins or [])}")


@click.group("rules", cls=AppGroup)
def rules_group() -> None:
    """Check and try rules files."""


def _rules_or_exit(path: str) -> RuleSet:
    """The rules file at ``path``; else its faults on stderr, one a line, and exit 1."""
    try:
        return load_rules(path)
    except RulesError as error:
        for message in error.messages or [str(error)]:
            click.echo(message, err=True)
        sys.exit(1)


@rules_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check_rules(path: str) -> None:
    """Validate a rules file: exit 1 with the file, rule and key at fault."""
    ruleset = _rules_or_exit(path)
    rules = len(ruleset.rules_for("default"))
    sites = len(ruleset.sites)
    click.echo(f"{path}: OK, {rules} rules, {sites} site overrides, version {ruleset.version[:12]}")
    unknown = _sites_not_in_database(ruleset.sites)
    if unknown:
        # A typo in a slug makes its overrides apply to nothing, silently: a warning, not a
        # failure, since a file may be checked before its site is made.
        click.echo(f"warning: no site {', '.join(unknown)} in the database; the overrides "
                   "for it apply once such a site is made (`moderation sites create`)",
                   err=True)


def _sites_not_in_database(slugs: tuple[str, ...]) -> list[str]:
    """The slugs with no site in the database; none when the database cannot tell (away,
    or not set up): checking a file needs no database."""
    if not slugs:
        return []
    try:
        known = set(db.session.scalars(sa.select(Site.slug).where(Site.slug.in_(slugs))))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return []
    return sorted(set(slugs) - known)


@rules_group.command("backtest")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--limit", default=500, show_default=True, type=click.IntRange(1, 5000),
              help="How many of the latest decided comments to replay.")
def backtest_rules(path: str, limit: int) -> None:
    """Replay the comments moderators decided through a rules file; print what would change."""
    from moderation.services.backtest import backtest

    ruleset = _rules_or_exit(path)
    report = backtest(ruleset, limit)
    spam, ham = report["confusion"]["spam"], report["confusion"]["ham"]
    click.echo(f"{report['decided']} decided comments: {report['spam']} spam, {report['ham']} ham")
    click.echo(f"spam: {spam['caught']} caught, {spam['pending']} pending, "
               f"{spam['missed']} missed")
    click.echo(f"ham:  {ham['passed']} passed, {ham['pending']} pending, "
               f"{ham['false_positives']} false positives")
    click.echo(f"{'SPAM%':>7} {'HAM%':>7} {'S/O':>6} {'SPAM':>5} {'HAM':>5}  RULE")
    for rule in report["rules"]:
        ratio = "-" if rule["s_o"] is None else f"{rule['s_o']:.3f}"
        click.echo(f"{rule['spam_percent']:7.2f} {rule['ham_percent']:7.2f} {ratio:>6} "
                   f"{rule['spam_hits']:5d} {rule['ham_hits']:5d}  {rule['rule']}")


# A century: past that a date cannot be worked out (and nothing is that old).
MAX_DAYS = 36_500


@click.command("purge")
@with_appcontext
@click.option("--spam-days", default=30, show_default=True, type=click.IntRange(0, MAX_DAYS),
              help="Delete spam and rejected comments older than this.")
@click.option("--ip-days", default=90, show_default=True, type=click.IntRange(0, MAX_DAYS),
              help="Truncate the IP addresses of comments older than this, and forget "
                   "Idempotency-Keys of that age.")
def purge_command(spam_days: int, ip_days: int) -> None:
    """Apply the retention policy; safe to run from cron while the service runs."""
    from moderation.services.retention import purge

    report = purge(spam_days=spam_days, ip_days=ip_days)
    click.echo(f"Deleted {report.deleted} spam/rejected comments; "
               f"truncated {report.ips_truncated} IP addresses; "
               f"forgot {report.idempotency_keys_forgotten} Idempotency-Keys and the "
               f"readers of {report.flag_reporters_forgotten} flags.")


@click.command("rekey")
@with_appcontext
@click.option("--yes", is_flag=True, help="Rekey without asking first.")
def rekey_command(yes: bool) -> None:
    """Hash every stored address again under this instance's server secret, and make it
    the database's: when the secret the others used is lost, or to change it."""
    from moderation.services import identity

    if not yes:
        click.confirm("Hash every address again under this instance's secret? Instances "
                      "with another secret are refused from then on.", abort=True)
    changed = identity.rekey()
    click.echo(f"Rekeyed: {changed} comments hashed again; this instance's secret is now "
               "the database's. Give every instance the same one.")


@click.command("erase")
@with_appcontext
@click.argument("email")
@click.option("--delete-content", is_flag=True, help="Delete the comments' text too.")
@click.option("--yes", is_flag=True, help="Erase without asking first.")
def erase_command(email: str, delete_content: bool, yes: bool) -> None:
    """Anonymise every comment by EMAIL (the right to erasure), as the admin API does."""
    from moderation.schemas.admin import EraseSchema
    from moderation.services import privacy

    try:  # the API's checks (a valid address, trimmed)
        email = EraseSchema().load({"email": email})["email"]
    except ValidationError as error:
        _invalid(error)
    what = " and delete their text" if delete_content else ""
    if not yes:
        click.confirm(f"Anonymise every comment by {email}{what}? This cannot be undone.",
                      abort=True)
    erased = privacy.erase(CLI_ACTOR, email, delete_content)
    click.echo(f"Erased {erased} comments.")


@click.command("export")
@with_appcontext
@click.argument("email")
def export_command(email: str) -> None:
    """Print everything stored about the commenter with EMAIL, as the admin API's export."""
    from moderation.schemas.admin import ExportQuerySchema, ExportSchema
    from moderation.services import privacy

    try:
        email = ExportQuerySchema().load({"email": email})["email"]
    except ValidationError as error:
        _invalid(error)
    # Dumped and encoded as the API answers it, so the two give the same JSON.
    click.echo(current_app.json.dumps(ExportSchema().dump(privacy.export(email)), indent=2))


@click.command("backup")
@with_appcontext
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(target: Path) -> None:
    """Copy the SQLite database to TARGET, whole and consistent, while the service runs.

    Copying the file itself while the service runs can tear it (a write half copied, or the
    last commits still in the -wal file beside it); SQLite's online backup reads one
    snapshot, without stopping writers. On PostgreSQL, use pg_dump.
    """
    engine = db.engine
    if engine.dialect.name != "sqlite":
        raise click.ClickException(
            "backup copies the embedded SQLite database; on PostgreSQL use pg_dump "
            "(pg_dump -Fc -f moderation.dump \"$DATABASE_URL\", without the +psycopg).")
    try:
        # A dated file in a folder made for it (backups/2026-11-28.db, as the README
        # shows) works the first time too. Only for the operator: the copy holds every
        # commenter's email and IP.
        # Each folder made, not only the last (mkdir's mode is for the last alone).
        for folder in reversed(target.parents):
            if not folder.exists():
                with contextlib.suppress(FileExistsError):  # made meanwhile: it stands
                    folder.mkdir(mode=0o700)
        new_private_file(target)
    except FileExistsError:
        raise click.ClickException(f"{target} exists; name a new file.") from None
    except OSError as error:
        raise click.ClickException(f"Cannot create {target}: {error.strerror}.") from None
    source, copy = engine.raw_connection(), sqlite3.connect(target)
    try:
        source.driver_connection.backup(copy)
        comments = copy.execute("SELECT count(*) FROM comments").fetchone()[0]
        checked = copy.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as error:
        checked = str(error)
    finally:
        copy.close()
        source.close()
    if checked != "ok":
        target.unlink(missing_ok=True)
        raise click.ClickException(f"Backup failed: {checked}.")
    click.echo(f"Backed up {comments} comments to {target}.")


def command_line_app() -> Flask:
    """The app the `moderation` command builds.

    No statement timeout: a migration or a purge of a big database may run for minutes,
    where a web request must not. And no need for the rules file in force to load (see
    init_rules): while it is broken, a purge, a backup or `rules check` of its fix runs.
    """
    from moderation import create_app

    # `moderation run` serves requests, which need the rules: it stops on a broken file
    # as gunicorn does, rather than serve 503s until someone notices.
    context = click.get_current_context(silent=True)
    serving = context is not None and context.info_name == "run"
    return create_app({"DATABASE_STATEMENT_TIMEOUT": 0, "RULES_REQUIRED": serving})


def _leave_no_metrics_files() -> None:
    """Remove this command's own files from the workers' metrics folder as it exits.

    Loading the app writes a metrics file or two there (the Docker image sets the folder
    for every process), and each `moderation purge` from cron left them until the next
    start of gunicorn: a scrape reads every file, and slowed as they piled up (audit).
    A command serves no request, so it has nothing to count.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for path in glob.glob(os.path.join(glob.escape(folder), f"*_{os.getpid()}.db")):
            with contextlib.suppress(OSError):
                os.remove(path)


def main() -> None:
    """Entry point of the `moderation` console script."""
    atexit.register(_leave_no_metrics_files)
    if sys.argv[1:2] != ["run"]:
        # Only `moderation run` serves: another command that saw a broken rules file first
        # would take the counting of such errors from the workers (services/rules.py).
        from moderation.services.rules import count_reload_errors_here

        count_reload_errors_here(False)
    group = ModerationGroup(create_app=command_line_app, help="Comment moderation service.",
                            add_version_option=False)
    # The service's own version; Flask's option printed Python's, Flask's and Werkzeug's.
    click.version_option(package_name="moderation", message="%(prog)s %(version)s")(group)
    group()
