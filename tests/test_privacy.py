"""No public answer ever carries a commenter's email, IP or user agent."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import comment

local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=3, max_size=12)
emails = st.builds(lambda user, host: f"{user}@{host}.example", local, local)
ips = st.ip_addresses().map(str)
agents = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz/.;( )0123456789",
                 min_size=8, max_size=60).map(lambda s: "UA-" + s.strip() + "-X")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(email=emails, ip=ips, agent=agents, content=st.text(min_size=1, max_size=200))
def test_public_answers_never_carry_private_fields(api, keys, email, ip, agent, content):
    body = comment(
        thread=f"/privacy/{abs(hash((email, ip)))}",
        author_email=email,
        ip=ip,
        user_agent=agent,
        content=content.strip() or "fallback text",
    )
    answers = [api.post("/api/v1/comments", body, key=keys.site)]
    created = answers[0].get_json()
    if answers[0].status_code == 201:
        answers.append(api.post(f"/api/v1/comments/{created['id']}/flags",
                                {"reason": "other"}))
    answers.append(api.get(f"/api/v1/comments?thread={body['thread']}"))
    for answer in answers:
        text = json.dumps(answer.get_json()) + str(answer.headers)
        assert email not in text
        assert f'"{ip}"' not in text and f" {ip}" not in text
        assert agent not in text
