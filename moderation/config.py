"""Configuration: defaults, then instance/config.py, then MODERATION_* env, then the test dict."""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Flask

from moderation.database import BUSY_TIMEOUT, WriteLockedConnection
from moderation.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    # Bodies above this answer 413. The largest valid submission fits: 10,000 characters
    # of content at up to 12 bytes each (an emoji percent-encoded by a form, %F0%9F%98%80,
    # or escaped in JSON as a surrogate pair) is 120,000 bytes, and the other fields, at
    # their longest, under 60,000 more. At 64 KiB a form refused 7,300 CJK characters.
    "MAX_CONTENT_LENGTH": 256 * 1024,
    "RULES_FILE": None,
    # SQLite's PRAGMA synchronous: FULL flushes every commit to disk, so nothing
    # acknowledged is lost even to a power cut; NORMAL is faster and survives only
    # crashes of the service itself (PostgreSQL has its own, durable, settings).
    "SQLITE_SYNCHRONOUS": "FULL",
    # Seconds between checks of the rules file by each worker's watcher.
    "RULES_RELOAD_INTERVAL": 1.0,
    # The classifier counts for nothing until it has learned this many spam and as many
    # ham decisions: a handful of examples would make it confidently wrong.
    "CLASSIFIER_MIN_DECISIONS": 10,
    # Seconds each worker reuses the database figures of /metrics (queue depth, classifier
    # size): counting a million comments takes about 90 ms, and /metrics needs no key.
    "METRICS_DATABASE_MAX_AGE": 5.0,
    # Seconds each worker trusts its last look at the database's secret fingerprint before
    # intake looks again (services/identity.py: refuse_intake_if_secret_differs).
    "SECRET_CHECK_INTERVAL": 5.0,
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    # Keep taking comments if Redis is down: fall back to in-memory limits and log it.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATELIMIT_SWALLOW_ERRORS": True,
    # How many proxies sit in front of the service and set X-Forwarded-For (0: none).
    "PROXY_HOPS": 0,
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    # PostgreSQL only: seconds a statement may run (or wait for a lock) before the database
    # cancels it and the request answers 503 with Retry-After. Well under gunicorn's
    # timeout (30 s), which would kill the worker and answer 500. 0: no limit, as the
    # `moderation` command runs (migrations and purges may take longer).
    "DATABASE_STATEMENT_TIMEOUT": 10,
    "API_TITLE": "Comment moderation service",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_REDOC_PATH": "docs",
    # ReDoc 2.5.2 (MIT) ships in the package and is served by the service itself: the docs
    # page loads nothing from a CDN, so it works offline and tells no third party who
    # reads it.
    "OPENAPI_REDOC_URL": "/static/redoc/redoc.standalone.js",
}


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Fill app.config in the documented order, and settle the database URL and secret."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    _environment_names(app)
    app.config.from_prefixed_env("MODERATION")
    _settle_types(app)
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    # Checked as set, before the `moderation` command's override: a value gunicorn refuses
    # must not pass every command unnoticed until the next restart of the service.
    _statement_timeout(app.config["DATABASE_STATEMENT_TIMEOUT"])
    if overrides:
        app.config.from_mapping(overrides)

    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        path = Path(app.instance_path) / "moderation.sqlite3"
        _create_private(path)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    else:
        _create_named_private(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = _with_driver(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        _statement_timeout(app.config["DATABASE_STATEMENT_TIMEOUT"]),
    )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    app.config["RATELIMIT_STORAGE_OPTIONS"] = _storage_options(
        app.config["RATELIMIT_STORAGE_URI"], app.config.get("RATELIMIT_STORAGE_OPTIONS"))


# Seconds a worker waits for Redis (the limits' storage) to connect or answer. redis-py
# waits forever by default: a Redis that hung (stopped, swapping, a network that drops
# packets) held every intake until gunicorn killed the worker at 30 s, /healthz too, and
# the in-memory fallback never began, as nothing failed (found by an audit). A Redis on
# the network answers in a millisecond; past this the request counts in memory instead.
REDIS_TIMEOUT = 1.0
# The `limits` library's URI schemes for one Redis (or Valkey) server; Sentinel and Cluster
# set their timeouts in MODERATION_RATELIMIT_STORAGE_OPTIONS (see the README).
REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "valkey", "valkeys", "valkey+unix")


def _storage_options(uri: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """The limits' storage options: Redis's timeouts, unless the operator set their own."""
    options = dict(given or {})
    if str(uri).split(":", 1)[0] in REDIS_SCHEMES:
        options.setdefault("socket_timeout", REDIS_TIMEOUT)
        options.setdefault("socket_connect_timeout", REDIS_TIMEOUT)
    return options


def configured_database_url() -> str | None:
    """The database URL load_config will settle on (None: the SQLite default), read without
    building the app: gunicorn.conf.py picks its worker count by it before there is one.
    The environment first, then the instance config, as load_config reads them."""
    for name in ("DATABASE_URL", "MODERATION_SQLALCHEMY_DATABASE_URI"):
        if os.environ.get(name):
            return os.environ[name]
    instance = Flask("moderation", instance_path=os.environ.get("MODERATION_INSTANCE_PATH")
                     or None, instance_relative_config=True)
    try:
        instance.config.from_pyfile("config.py", silent=True)
    except Exception:  # noqa: BLE001 - the app reports a broken config file when it loads it
        return None
    _environment_names(instance)
    url = instance.config.get("SQLALCHEMY_DATABASE_URI")
    return url if isinstance(url, str) else None


def _environment_names(app: Flask) -> None:
    """The instance config may name a setting as the environment does (the contract's
    table: DATABASE_URL, MODERATION_RULES_FILE, ...); those names were ignored there."""
    for name in [name for name in app.config if name.startswith("MODERATION_")]:
        app.config[name.removeprefix("MODERATION_")] = app.config.pop(name)
    if "DATABASE_URL" in app.config:
        app.config["SQLALCHEMY_DATABASE_URI"] = app.config.pop("DATABASE_URL")


_TRUE = frozenset(("true", "1", "yes", "on"))
_FALSE = frozenset(("false", "0", "no", "off"))


def _settle_types(app: Flask) -> None:
    """Switches as booleans and the secret as text, however the environment spelt them.

    from_prefixed_env reads each value as JSON and keeps what does not parse as text, so
    MODERATION_RATELIMIT_ENABLED=False stayed the string "False", which is true: the
    limits an operator switched off stayed on. And a secret made only of digits became
    a number, which the form tokens' signer cannot take.
    """
    for name, default in DEFAULTS.items():
        value = app.config.get(name)
        if isinstance(default, bool) and isinstance(value, str | int) and not isinstance(
                value, bool):
            word = str(value).strip().lower()
            if word not in _TRUE | _FALSE:
                raise ConfigError(f"MODERATION_{name} must be true or false, not {value!r}")
            app.config[name] = word in _TRUE
    for name, (kind, minimum) in _NUMBERS.items():
        value = app.config.get(name)
        if value is not None or name != "MAX_CONTENT_LENGTH":  # None: no body limit
            app.config[name] = _number(name, value, kind, minimum)
    if os.environ.get("MODERATION_SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["MODERATION_SECRET_KEY"]


# The numeric settings, each with its type and least value, checked at start: a value
# that is not one (MODERATION_CLASSIFIER_MIN_DECISIONS=x) started the service and then
# answered every comment 500.
_NUMBERS: dict[str, tuple[type[int] | type[float], float]] = {
    "MAX_CONTENT_LENGTH": (int, 1),
    "RULES_RELOAD_INTERVAL": (float, 0.01),
    "CLASSIFIER_MIN_DECISIONS": (int, 0),
    "PROXY_HOPS": (int, 0),
    "METRICS_DATABASE_MAX_AGE": (float, 0),
    "SECRET_CHECK_INTERVAL": (float, 0),
}


def _number(name: str, value: Any, kind: type[int] | type[float], minimum: float) -> float:
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError(value)
        number = kind(str(value).strip())
        if not math.isfinite(number) or number < minimum:
            raise ValueError(value)
    except (TypeError, ValueError, OverflowError):
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"MODERATION_{name} must be {what} from {minimum:g} up, "
                          f"not {value!r}") from None
    return number


def _with_driver(url: str) -> str:
    # "postgresql://" would pick psycopg2, which we do not ship; psycopg 3 is the driver.
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _statement_timeout(value: Any) -> float:
    """DATABASE_STATEMENT_TIMEOUT as seconds (0: none); a ConfigError unless it is one."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 <= seconds < 86_400 or isinstance(value, bool):
        raise ConfigError("MODERATION_DATABASE_STATEMENT_TIMEOUT must be a number of seconds "
                          "from 0 (no limit) to 86399.")
    return seconds


def _engine_options(url: str, given: dict[str, Any], statement_timeout: float) -> dict[str, Any]:
    # A database error's message would otherwise carry the statement's values (emails,
    # comment text) into the logs, which must hold neither.
    options: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("postgresql"):
        # A pooled connection may have died with a server restart: test it on checkout.
        options["pool_pre_ping"] = True
        # Fail fast when the server is away, so clients get a 503 instead of a hang.
        options["connect_args"] = {"connect_timeout": 3}
        if statement_timeout:
            # A statement stuck behind a lock (a migration, VACUUM FULL, a held LOCK TABLE)
            # is cancelled, and the request answers 503 (errors.py), before gunicorn's
            # timeout kills the worker and the client gets a 500 after 30 s.
            milliseconds = max(1, round(statement_timeout * 1000))
            options["connect_args"]["options"] = f"-c statement_timeout={milliseconds}"
        options["pool_timeout"] = 5
    elif url.startswith("sqlite"):
        # Several gunicorn workers write to one file: wait for the lock instead of failing,
        # queued on a file lock (see moderation.database.WriteLockedConnection).
        options["connect_args"] = {"timeout": BUSY_TIMEOUT, "factory": WriteLockedConnection}
    options.update(given)
    return options


def _create_private(database: Path) -> None:
    """The default SQLite file, made readable by its owner alone before SQLite first opens
    it: it holds commenters' emails and IPs. SQLite gives its -wal and -shm files the
    database file's mode. The instance folder is made private too."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # made earlier, or by another worker first
        new_private_file(database)


def new_private_file(path: Path | str) -> None:
    """Create the file, readable by its owner alone; FileExistsError if it exists."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _create_named_private(url: str) -> None:
    """A SQLite file named by DATABASE_URL, made 0600 before SQLite first creates it (0644)
    as the default one is; its folder is the operator's, and left as it is. One that
    exists, or cannot be made here, is left to SQLite."""
    if not url.startswith("sqlite:///") or "?" in url:  # ?mode=, uri=true: SQLite's to read
        return
    name = url.removeprefix("sqlite:///")
    if name in ("", ":memory:") or name.startswith("file:"):
        return
    with contextlib.suppress(OSError):  # it exists, or its folder does not: SQLite says so
        new_private_file(name)


def make_private(database: Path) -> list[Path]:
    """An existing install's instance folder, database and its -wal and -shm files, readable
    by their owner alone (`moderation init` runs it: files made before the service made
    them private); the paths it changed. One it may not change is left as it is."""
    changed = []
    for path, mode in ((database.parent, 0o700), (database, 0o600),
                       (database.with_name(database.name + "-wal"), 0o600),
                       (database.with_name(database.name + "-shm"), 0o600)):
        try:
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(mode)
                changed.append(path)
        except OSError:
            pass  # not the owner: the operator's choice stands
    return changed


def _instance_secret(instance: Path) -> str:
    """The server secret, generated once into the instance folder and kept private."""
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        # Written whole under another name, then linked into place: a worker that found
        # the file between its creation and the write read an empty secret, and keyed
        # every email HMAC and form token with "".
        draft = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        new_private_file(draft)
        try:
            draft.write_text(secrets.token_urlsafe(48))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass  # another worker's is in place first
            except OSError:  # a file system without hard links (some network mounts)
                with contextlib.suppress(FileExistsError):
                    new_private_file(path)
                    path.write_text(draft.read_text())
        finally:
            draft.unlink()
    secret = path.read_text().strip()
    for _ in range(50):  # made and then written (the fallback): another may be writing it
        if secret:
            break
        time.sleep(0.02)
        secret = path.read_text().strip()
    if not secret:
        raise ConfigError(
            f"{path} is empty: the service will not key email hashes and form tokens with "
            "an empty secret. Put back the one it held, or delete the file to have a new "
            "one made and run `moderation rekey` to hash the stored addresses under it.")
    return secret
