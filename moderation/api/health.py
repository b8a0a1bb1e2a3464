"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import jsonify
from flask_smorest.error_handler import ErrorSchema
from marshmallow import fields
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import HTTP_STATUS_CODES

from moderation.api import RETRY_AFTER, Blueprint
from moderation.errors import DATABASE_RETRY_AFTER
from moderation.extensions import db
from moderation.metrics import metrics_response
from moderation.schemas import HealthSchema
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


@blp.route("/readyz")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=NotReadySchema, headers=RETRY_AFTER,
                  description="Database unreachable or no rules")
def readyz() -> Any:
    """The database answers and rules are loaded."""
    checks = {"database": "ok", "rules": "ok"}
    try:
        db.session.execute(sa.text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        checks["database"] = "unreachable"
    try:
        rules_loaded = watcher().current is not None
    except Exception:  # noqa: BLE001 - any failure to have rules means not ready
        rules_loaded = False
    if not rules_loaded:
        checks["rules"] = "not loaded"
    failing = [f"{name} {state}" for name, state in checks.items() if state != "ok"]
    if not failing:
        return {"status": "ok", "checks": checks}
    # Like every other error, in the contract's shape: the probe's 503 reads as the API's.
    response = jsonify({"code": 503, "status": HTTP_STATUS_CODES[503],
                        "message": f"Not ready: {', '.join(failing)}.", "checks": checks})
    response.status_code = 503
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response
