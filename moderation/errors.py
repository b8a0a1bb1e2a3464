"""Domain exceptions, and the handlers that turn every error into the contract's JSON shape."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DataError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from moderation.extensions import db
from moderation.schema_version import ADVICE, SchemaState, schema_state


class ConfigError(ValueError):
    """A setting the service cannot start with; the message names it (the CLI shows it as
    one line, gunicorn's log as the error that stopped the worker)."""


log = logging.getLogger("moderation")

# Seconds a client should wait before retrying while the database is away.
DATABASE_RETRY_AFTER = 5


class ServiceError(Exception):
    """A failure the caller can act on; `code` is the HTTP status the API answers with."""

    code = 400

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(ServiceError):
    code = 404


class Forbidden(ServiceError):
    code = 403


class Conflict(ServiceError):
    code = 409


class Invalid(ServiceError):
    code = 422


class PreconditionFailed(ServiceError):
    code = 412


class PreconditionRequired(ServiceError):
    code = 428


class SecretMismatch(ServiceError):
    """This instance's server secret is not the one the database's hashes were made with."""

    code = 503


class Unauthorized(ServiceError):
    code = 401

    def __init__(self, message: str, invalid_key: bool = False):
        super().__init__(message)
        # Without a key, only the scheme; with one that failed, say so (RFC 6750 3.1).
        self.challenge = 'Bearer error="invalid_token"' if invalid_key else "Bearer"


class TooManyRequests(ServiceError):
    code = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def error_response(
    code: int,
    message: str,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The one JSON error shape: code, status, message, and errors where fields are at fault."""
    body: dict[str, Any] = {
        "code": code,
        "status": HTTP_STATUS_CODES.get(code, "Unknown"),
        "message": message,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_field_errors(messages: Any) -> dict[str, Any]:
    """webargs nests field errors by location ({"json": {...}}); the contract names fields."""
    if isinstance(messages, dict) and set(messages) <= {
        "json", "form", "query", "querystring", "headers", "json_or_form", "files", "path",
    }:
        flat: dict[str, Any] = {}
        for location_errors in messages.values():
            if isinstance(location_errors, dict):
                flat.update(location_errors)
            else:
                flat.setdefault("_schema", []).extend(location_errors)
        return flat
    if isinstance(messages, dict):
        return messages
    return {"_schema": messages}


def _handle_service_error(error: ServiceError) -> Response:
    headers = None
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    if isinstance(error, SecretMismatch):  # as every 503: the spec promises the header
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
    if isinstance(error, Unauthorized):
        # RFC 6750 3: a 401 names the scheme the client should use.
        headers = {"WWW-Authenticate": error.challenge}
    return error_response(error.code, error.message, error.errors, headers)


def _handle_http_exception(error: HTTPException) -> Response:
    # Build from the exception's own response so status and headers (Allow, Retry-After) survive.
    original = error.get_response()
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = flatten_field_errors(data["messages"]) if "messages" in data else None
    message = data.get("message") or error.description or HTTP_STATUS_CODES.get(code, "")
    if code == 422 and not data.get("message"):
        message = "Some fields are invalid."
    if code == 429:
        message = "Too many requests; slow down."
    response = error_response(code, message, errors)
    for name in ("Allow", "Retry-After", "WWW-Authenticate", "Location"):
        if name in original.headers:
            response.headers[name] = original.headers[name]
    if code == 429 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = "60"
    return response


def _database_unavailable(error: Exception) -> Response:
    db.session.rollback()
    # The driver's first line tells "database is locked" from "disk full" or "read-only"
    # (its class alone did not); it names no value: parameters stay hidden, and the
    # lines after the first (PostgreSQL's DETAIL) are left out.
    reason = str(getattr(error, "orig", "") or "").strip().splitlines()[:1]
    log.error("database unavailable: %s%s", type(error).__name__,
              f": {reason[0][:200]}" if reason else "")
    return error_response(
        503,
        "The database is unavailable; please retry shortly.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


# PostgreSQL's SQLSTATEs for a table and a column the query names that do not exist.
_UNDEFINED_TABLE_OR_COLUMN = {"42P01", "42703"}


def _names_what_is_not_there(error: DBAPIError) -> bool:
    """The query named a table or a column the database does not have."""
    if getattr(error.orig, "sqlstate", None) in _UNDEFINED_TABLE_OR_COLUMN:
        return True
    # SQLite gives them no code of their own (SQLITE_ERROR, as for any other), only words.
    message = str(error.orig)
    return isinstance(error, OperationalError) and (
        message.startswith(("no such table", "no such column"))
        or " has no column named " in message
    )


def _schema_not_at_head(error: DBAPIError) -> Response | None:
    """A 503 naming what to do when the database's schema is not this code's; None when it
    is, for then a table or column missing is a bug, to be logged as one."""
    db.session.rollback()
    try:
        state = schema_state(db.session.connection())
    except SQLAlchemyError:
        return _database_unavailable(error)
    finally:
        db.session.rollback()
    if state is SchemaState.CURRENT:
        return None
    log.error("database schema %s: %s", state.value, ADVICE[state])
    return error_response(503, ADVICE[state],
                          headers={"Retry-After": str(DATABASE_RETRY_AFTER)})


def _handle_dbapi_error(error: DBAPIError) -> Response:
    if _names_what_is_not_there(error):
        # Started without `moderation init` (a plain gunicorn or systemd start), every
        # query fails so: the operator's to fix, not a bug, and the same answer /readyz gives.
        return _schema_not_at_head(error) or _handle_unexpected(error)
    if isinstance(error, OperationalError) or error.connection_invalidated:
        return _database_unavailable(error)
    if isinstance(error, DataError):
        # A value the database cannot hold slipped past validation: still the caller's
        # input, so a 422, logged in full so that the validation gap gets closed.
        db.session.rollback()
        log.exception("value refused by the database")
        return error_response(422, "A value is not valid for storage.")
    return _handle_unexpected(error)


def _handle_unexpected(error: Exception) -> Response:
    db.session.rollback()
    log.exception("unhandled error")
    return error_response(500, InternalServerError.description)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ServiceError, _handle_service_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(DBAPIError, _handle_dbapi_error)
    # Every pooled connection busy past pool_timeout: not a database error to SQLAlchemy,
    # but to the client the same wait, so the same 503 with Retry-After, not a 500.
    app.register_error_handler(PoolTimeout, _database_unavailable)
    app.register_error_handler(Exception, _handle_unexpected)
