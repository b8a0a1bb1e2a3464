"""Headers that HTTP clients and tools rely on: the 401 challenge, the metrics type, and
what keeps browsers and caches from misusing an answer."""

from __future__ import annotations

import pytest

from tests.conftest import comment


def test_a_401_names_the_bearer_scheme(api):
    missing = api.get("/api/v1/moderation/queue")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = api.get("/api/v1/moderation/queue", key="mk_0123456789ab_nosuchsecret")
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert wrong.get_json()["code"] == 401


def test_metrics_say_their_type_once(api):
    answer = api.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].count("charset") == 1
    assert answer.headers["Content-Type"].startswith("text/plain; version=")



@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
def test_retry_after_comes_only_with_a_refusal(api):
    """flask-limiter sent Retry-After with every 201; a client may take it to mean 'wait'."""
    answer = api.post("/api/v1/comments", comment())
    assert answer.status_code == 201
    assert "X-RateLimit-Limit" in answer.headers
    assert "Retry-After" not in answer.headers


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
def test_no_retry_after_on_errors_that_waiting_does_not_cure(api):
    for answer in (api.post("/api/v1/comments", comment(site="nosuch")),     # 404
                   api.post("/api/v1/comments", comment(author_email="x")),  # 422
                   api.post("/api/v1/comments/99/flags", {"reason": "spam"})):
        assert answer.status_code in (404, 422)
        assert "Retry-After" not in answer.headers, answer.status_code


def test_an_answer_without_content_says_no_content_type(api, keys):
    """The 204s of the admin's deletions said `Content-Type: application/json` about a body
    they do not have; a client that parses by the type then fails on nothing."""
    key_id = next(key["id"] for key in api.get("/api/v1/admin/keys", key=keys.admin)
                  .get_json()["items"] if key["name"] == "mod")
    for answer in (api.delete("/api/v1/admin/sites/other", key=keys.admin),
                   api.delete(f"/api/v1/admin/keys/{key_id}", key=keys.admin)):
        assert answer.status_code == 204
        assert "Content-Type" not in answer.headers and answer.data == b""
    with api.get("/static/redoc/redoc.standalone.js") as script:
        etag = script.headers["ETag"]
    with api.get("/static/redoc/redoc.standalone.js",
                 headers={"If-None-Match": etag}) as unchanged:
        assert unchanged.status_code == 304
        assert "Content-Type" not in unchanged.headers and unchanged.data == b""


def test_answers_with_secrets_or_personal_data_are_never_cached(api, keys):
    """A new key's secret, the queue's emails and IPs, an export and a one-visitor form
    token must not be kept by a proxy or a browser cache; an error from those routes
    neither. The public thread page stays cacheable."""
    created = api.post("/api/v1/admin/keys", {"name": "cache-check", "role": "moderator",
                                              "sites": ["default"]}, key=keys.admin)
    assert created.status_code == 201 and "secret" in created.get_json()
    api.post("/api/v1/comments", comment())
    private = {
        "new key": created,
        "queue": api.get("/api/v1/moderation/queue", key=keys.moderator),
        "export": api.get("/api/v1/admin/privacy/export?email=ada@example.org",
                          key=keys.admin),
        "form token": api.get("/api/v1/form-token?thread=/t"),
        "401": api.get("/api/v1/moderation/queue"),
        "site key post": api.post("/api/v1/comments", comment(content="From the backend."),
                                  key=keys.site),
    }
    for name, answer in private.items():
        assert answer.status_code < 500, name
        assert answer.headers.get("Cache-Control") == "no-store", name
    thread = api.get("/api/v1/comments?thread=/t")
    assert thread.status_code == 200
    # Kept, but asked again each time (with its ETag): a comment removed is gone at once.
    assert thread.headers.get("Cache-Control") == "no-cache"
    keyed = api.get("/api/v1/comments?thread=/t", key=keys.site)
    assert keyed.headers.get("Cache-Control") == "no-store"


def test_every_answer_forbids_sniffing_and_framing(api):
    for answer in (api.get("/api/v1/comments?thread=/t"),
                   api.post("/api/v1/comments", {"content": "no fields"}),  # 422
                   api.get("/api/v1/nothing-here"),                          # 404
                   api.get("/docs"), api.get("/openapi.json"), api.get("/healthz"),
                   api.get("/static/redoc/redoc.standalone.js")):
        with answer:  # a static file's answer holds the file open until closed
            assert answer.headers.getlist("X-Content-Type-Options") == ["nosniff"], (
                answer.status_code)
            assert answer.headers.getlist("X-Frame-Options") == ["DENY"], answer.status_code


def test_json_answers_forbid_scripts_and_loads_of_any_kind(api, keys):
    for answer in (api.get("/api/v1/comments?thread=/t"),
                   api.post("/api/v1/comments", {"content": "no fields"}),  # 422
                   api.get("/api/v1/nothing-here"),                          # 404
                   api.get("/api/v1/moderation/queue", key=keys.moderator),
                   api.get("/openapi.json")):
        assert answer.headers.getlist("Content-Security-Policy") == [
            "default-src 'none'; frame-ancestors 'none'"], answer.status_code
    # The docs page loads its script and styles, from the service alone.
    [docs_policy] = api.get("/docs").headers.getlist("Content-Security-Policy")
    assert "script-src 'self';" in docs_policy and "img-src 'self' data:;" in docs_policy
