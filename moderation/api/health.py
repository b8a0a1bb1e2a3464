"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from moderation.api import Blueprint
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
    """Prometheus metrics, summed over every gunicorn worker."""
    return metrics_response()


@blp.route("/readyz")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="Database unreachable or no rules")
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
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if ready:
        return body
    return body, 503, {"Retry-After": "5"}
