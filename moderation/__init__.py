"""Comment moderation service: create_app() builds the Flask application."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface
from limits.errors import ConfigurationError as LimitsConfigurationError
from sqlalchemy import exc as sa_exc
from werkzeug.middleware.proxy_fix import ProxyFix


def migrations_directory() -> str:
    """Alembic's folder: the checkout's migrations/, or where MODERATION_MIGRATIONS_DIR says."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default = os.path.join(checkout, "migrations")
    return os.environ.get("MODERATION_MIGRATIONS_DIR") or default


class NoCookieSessions(SessionInterface):
    """The API keeps no cookie session: callers authenticate with a key on every request.

    Flask's default opens (and on the way out considers saving) a signed cookie session
    on every request; nothing here reads one, and it cost 2% of intake's instructions.
    Flask hands views a NullSession instead, which says so if anything tries to write.
    """

    def open_session(self, app: Flask, request: Any) -> None:
        return None

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        return None


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: config -> extensions -> errors -> blueprints -> cli."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("MODERATION_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )

    from moderation.config import load_config
    from moderation.errors import ConfigError

    try:
        load_config(app, config)
    except OSError as error:  # the instance folder cannot be made or written
        raise ConfigError(f"Cannot use the instance folder {app.instance_path} "
                          f"({error.strerror}): set MODERATION_INSTANCE_PATH.") from None
    from moderation.api.json_body import JSONProvider

    # Decoding refuses bodies that Python's json would take but nothing after could use.
    app.json = JSONProvider(app)
    # Answers keep their fields in the contract's order ("id" first), not sorted; Flask 3
    # reads this from app.json, no longer from the JSON_SORT_KEYS setting.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.session_interface = NoCookieSessions()
    if app.config["MAX_CONTENT_LENGTH"] is not None:  # None: no limit, as in Flask
        from moderation.body_limit import RequestBody

        limit = int(app.config["MAX_CONTENT_LENGTH"])
        app.wsgi_app = RequestBody(app.wsgi_app, limit)  # type: ignore[method-assign]
    if app.config["PROXY_HOPS"]:
        # Trust exactly as many X-Forwarded-* hops as there are proxies, no more.
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from moderation.database import configure_engine
    from moderation.extensions import api, db, limiter, migrate
    from moderation.logs import configure_logging
    from moderation.metrics import init_metrics
    from moderation.services.rules import init_rules

    configure_logging(app)
    from moderation.body_limit import refuse_a_broken_body

    # Before the limits' hook (registered by limiter.init_app below), which reads the body.
    app.before_request(refuse_a_broken_body)
    init_metrics(app)
    try:
        db.init_app(app)  # builds the engine from the URL
    except (sa_exc.ArgumentError, ImportError, ValueError):
        # Neither the URL nor SQLAlchemy's message about it is shown: it may hold a password.
        # (ValueError: a port that is no number, or an unclosed "[", in the URL's host.)
        raise ConfigError("DATABASE_URL is not a database URL the service can use: "
                          "sqlite:///path or postgresql://user@host/dbname.") from None
    migrate.init_app(app, db, directory=migrations_directory())
    from moderation.services.limits import keep_retry_after_for_waits

    # Registered before the limiter's own hook: Flask runs after_request hooks in reverse
    # order, so this one sees the headers the limiter has added.
    app.after_request(keep_retry_after_for_waits)
    try:
        limiter.init_app(app)  # builds the limits' storage from its URI
    except LimitsConfigurationError:
        # Not the URI, which its message quotes: it may hold Redis's password.
        raise ConfigError("MODERATION_RATELIMIT_STORAGE_URI names no storage the limits can "
                          "use: memory:// or redis://host:6379.") from None
    api.init_app(
        app,
        spec_kwargs={
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API key"}
                }
            }
        },
    )
    from moderation.schemas.base import blank_allowed, empty_value_allowed, string_without_nul

    api.ma_plugin.converter.add_attribute_function(string_without_nul)
    api.ma_plugin.converter.add_attribute_function(blank_allowed)
    api.ma_plugin.converter.add_parameter_attribute_function(empty_value_allowed)
    configure_engine(app)
    init_rules(app)

    from moderation.api import (
        IdConverter,
        empty_options_answer_is_204,
        id_parameter_schema,
        no_content_type_without_content,
        security_headers,
    )

    app.url_map.converters["id"] = IdConverter
    # Werkzeug redirected `/api/v1//comments` to the merged path with an HTML 308 whose
    # Location it built from the Host header (found by an audit): now a JSON 404.
    app.url_map.merge_slashes = False
    api.register_converter(IdConverter, id_parameter_schema)

    from moderation.errors import register_error_handlers

    register_error_handlers(app)

    from moderation.api import admin, cors, health, moderation, public, rules

    for module in (public, moderation, admin, rules, health):
        api.register_blueprint(module.blp)
    health.document_the_docs(api.spec, app.url_map)
    app.after_request(cors.add_cors_headers)
    app.after_request(no_content_type_without_content)
    # Runs before the one above (Flask runs these hooks last-registered first).
    app.after_request(empty_options_answer_is_204)
    app.after_request(security_headers)

    from moderation.cli import register_commands

    register_commands(app)
    return app
