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
