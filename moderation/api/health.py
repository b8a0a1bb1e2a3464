"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask_smorest.error_handler import ErrorSchema
from marshmallow import fields
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import HTTP_STATUS_CODES

from moderation.api import RETRY_AFTER, Blueprint
from moderation.errors import DATABASE_RETRY_AFTER
from moderation.extensions import db
from moderation.metrics import metrics_response
from moderation.schema_version import ADVICE, SchemaState, schema_state
from moderation.schemas.public import HealthSchema
from moderation.services import identity
from moderation.services.identity import SECRET_MISMATCH
from moderation.services.rules import watcher

blp = Blueprint("health", __name__, description="Probes")


@blp.route("/healthz")
@blp.response(200, HealthSchema)
def healthz() -> dict[str, Any]:
    """The process answers."""
    return {"status": "ok", "checks": {}}


@blp.route("/metrics")
@blp.doc(responses={"200": {"description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics() -> Any:
    """Prometheus metrics, summed over every gunicorn worker.

    While the database is away the scrape still answers, without the queue depth and the
    classifier's size.
    """
    return metrics_response()


class NotReadySchema(ErrorSchema):
    """The contract's error shape, with the failing checks beside it."""

    checks = fields.Dict(keys=fields.String(), values=fields.String())


def _secret_differs() -> bool:
    try:
        return identity.secret_matches() is False
    except SQLAlchemyError:  # gone since the schema was read: the next probe will say
        db.session.rollback()
        return False


@blp.route("/readyz")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=NotReadySchema, headers=RETRY_AFTER,
                  description="Database unreachable or not migrated, no rules, or a "
                  "server secret other than the database's")
def readyz() -> Any:
    """The database answers with the schema this code's migrations lead to; rules are loaded."""
    checks = {"database": "ok", "schema": "ok", "rules": "ok"}
    failing = []
    advice = []
    try:
        state = schema_state(db.session.connection())
    except SQLAlchemyError:
        db.session.rollback()
        checks["database"] = "unreachable"
        checks["schema"] = "unknown"
        failing.append("database unreachable")
    else:
        checks["schema"] = state.value
        # A schema ahead of the code is still ready. In a rolling deploy the new release's
        # `moderation init` migrates before the old workers are replaced, and the
        # migrations only add (tables, nullable or defaulted columns, indexes), so the old
        # code keeps working; calling it not ready would take every old worker out of the
        # rotation at once, before a new one is up: an outage for a schema it can use.
        # Missing or behind is not ready: the code's queries name tables and columns that
        # are not there, so every request would fail.
        if state in (SchemaState.MISSING, SchemaState.BEHIND):
            failing.append(f"schema {state.value}")
            advice.append(ADVICE[state])
        elif _secret_differs():
            # Serving, it would hash every address unlike the other instances: trust,
            # limits and duplicates would not know anyone, and an erasure would miss.
            checks["secret"] = "not the database's"
            failing.append("server secret differs from the database's")
            advice.append(SECRET_MISMATCH)
    try:
        rules_loaded = watcher().current is not None
    except Exception:  # noqa: BLE001 - any failure to have rules means not ready
        rules_loaded = False
    if not rules_loaded:
        checks["rules"] = "not loaded"
        failing.append("rules not loaded")
    if not failing:
        return {"status": "ok", "checks": checks}
    # Like every other error, in the contract's shape: the probe's 503 reads as the API's.
    message = " ".join([f"Not ready: {', '.join(failing)}.", *advice])
    response = jsonify({"code": 503, "status": HTTP_STATUS_CODES[503],
                        "message": message, "checks": checks})
    response.status_code = 503
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


def document_the_docs(spec: Any, url_map: Any) -> None:
    """Put the two routes flask-smorest serves itself, outside any blueprint, in the spec:
    the contract's spec lists every route (a PostgreSQL audit found them missing)."""
    rules = {rule.rule: rule for rule in url_map.iter_rules()}
    for path, summary, content in (
        ("/openapi.json", "This OpenAPI document.", {"application/json": {"schema": {
            "type": "object"}}}),
        ("/docs", "The API's documentation as a page (ReDoc over this document).",
         {"text/html": {"schema": {"type": "string"}}}),
    ):
        if path not in rules:
            continue  # moved (MODERATION_OPENAPI_URL_PREFIX): flask-smorest's own business
        spec.path(rule=rules[path], operations={"get": {
            "summary": summary, "tags": ["health"],
            "responses": {"200": {"description": "OK", "content": content},
                          "default": {"$ref": "#/components/responses/DEFAULT_ERROR"}},
        }})
