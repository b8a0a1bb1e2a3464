"""Admin routes for the rules: what is in force, dry runs against a comment, backtests."""

from __future__ import annotations

from typing import Any

from moderation.api import NO_QUERY, Blueprint, errors, guarded
from moderation.database import read_only
from moderation.models import Role
from moderation.schemas.admin import (
    BacktestRequestSchema,
    BacktestSchema,
    RulesStateSchema,
    RulesTestSchema,
    VerdictSchema,
)
from moderation.services import backtest, rules

blp = Blueprint("rules", __name__, url_prefix="/api/v1/admin/rules", description="Rules")


@blp.route("", methods=["GET"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.response(200, RulesStateSchema)
@errors(blp, 422)
def rules_state() -> dict[str, Any]:
    """The rules in force: version, when loaded, from where, and the last reload error."""
    return rules.state()


@blp.route("/test", methods=["POST"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(RulesTestSchema())
@blp.response(200, VerdictSchema)
@errors(blp, 400, 404, 415, 422)
def rules_test(request: dict[str, Any]) -> dict[str, Any]:
    """Judge a comment under the rules in force, or under the YAML given; stores nothing."""
    with read_only():  # stores nothing: on SQLite, no write lock to hold up intake
        return rules.dry_run(request["comment"], request["rules"]).as_dict()


@blp.route("/backtest", methods=["POST"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(BacktestRequestSchema())
@blp.response(200, BacktestSchema)
@errors(blp, 400, 415, 422)
def rules_backtest(request: dict[str, Any]) -> dict[str, Any]:
    """How the given rules would have judged the last N comments moderators decided."""
    # Replaying thousands of comments takes a while: as a read, so that on SQLite it does
    # not hold the write lock, and every intake with it, while it runs.
    with read_only():
        return backtest.backtest(backtest.candidate(request["rules"]), request["limit"])
