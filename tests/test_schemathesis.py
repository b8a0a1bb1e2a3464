"""Schemathesis drives every operation of the OpenAPI spec, with and without a key."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from tests.conftest import comment

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
# A missing If-Match is 428 Precondition Required (RFC 6585), as the contract says.
CONFIG = SchemathesisConfig.from_str(
    """
[checks.missing_required_header]
expected-statuses = [400, 401, 403, 406, 415, 422, 428]

# A reply must be to an approved comment of the same thread (422 by the contract): a rule
# across fields and stored data that JSON Schema cannot state, so 422 is expected there.
[[operations]]
include-name = "POST /api/v1/comments"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", 401, 403, 404, 409, 422, 429,
]

# A well-formed cursor made for another listing (sort, filters, thread) is 422: it carries
# a digest of its listing, which JSON Schema cannot check against the other arguments.
[[operations]]
include-name = [
    "GET /api/v1/comments", "GET /api/v1/moderation/queue", "GET /api/v1/moderation/audit",
]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", 401, 403, 404, 409, 422, 429,
]

# A well-formed ETag that is not the comment's current version is 412 by the contract.
[[operations]]
include-name = "POST /api/v1/moderation/comments/{comment_id}/decision"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", 401, 403, 404, 409, 412, 429,
]
"""
)


@pytest.fixture
def api_schema(app, api, keys):
    # Something to find: a published comment (id 1) and a held one, on the default site.
    api.post("/api/v1/comments", comment())
    api.post("/api/v1/comments", comment(content="holdword", author_email="b@example.org"))
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")
FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@schema.parametrize()
@FUZZ
def test_every_operation_without_a_key(case):
    case.call_and_validate(checks=ALL_CHECKS)


@schema.parametrize()
@FUZZ
def test_every_operation_with_an_admin_key(case, keys):
    case.call_and_validate(headers={"Authorization": f"Bearer {keys.admin}"}, checks=ALL_CHECKS)
