"""Headers that HTTP clients and tools rely on: the 401 challenge, the metrics type."""

from __future__ import annotations


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

