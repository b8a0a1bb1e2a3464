"""GET /metrics: requests, verdicts, queue depth, reload errors, classifier size."""

from __future__ import annotations

from tests.conftest import comment


def value(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_verdicts_and_queue_depth(api):
    before = api.get("/metrics").get_data(as_text=True)
    api.post("/api/v1/comments", comment(content="a holdword"))
    api.post("/api/v1/comments", comment(content="fine words", author_email="b@example.org"))
    text = api.get("/metrics").get_data(as_text=True)
    submit = 'moderation_http_requests_total{method="POST",route="/api/v1/comments",status="201"}'
    assert value(text, submit) == value(before, submit) + 2
    assert value(text, 'moderation_verdicts_total{outcome="pending"}') >= 1
    assert value(text, 'moderation_rule_hits_total{rule="HOLD_WORD"}') >= 1
    assert value(text, 'moderation_queue_depth{site="default",status="pending"}') == 1
    assert value(text, 'moderation_queue_depth{site="default",status="approved"}') == 1
    assert "moderation_http_request_duration_seconds_bucket" in text
    assert "moderation_rules_reload_errors_total" in text
    assert "moderation_classifier_tokens" in text


def test_a_route_method_and_status_seen_before_reuse_their_series(api):
    """The labelled series are looked up once per label set, not on every request, and
    the counts are the same for it."""
    from moderation.metrics import _request_series

    submit = 'moderation_http_requests_total{method="POST",route="/api/v1/comments",status="201"}'
    before = value(api.get("/metrics").get_data(as_text=True), submit)
    api.post("/api/v1/comments", comment(content="first words", author_email="a@example.org"))
    hits = _request_series.cache_info().hits
    api.post("/api/v1/comments", comment(content="other words", author_email="b@example.org"))
    assert _request_series.cache_info().hits == hits + 1
    assert value(api.get("/metrics").get_data(as_text=True), submit) == before + 2
