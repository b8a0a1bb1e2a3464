"""JSON bodies: every route decodes them alike, and a body nothing could use is a 400."""

from __future__ import annotations

import io
import json
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from moderation.extensions import db
from moderation.models import Comment
from tests.conftest import comment

LONE_SURROGATE = b'"\\ud800 alone"'
NESTED = b"[" * 30000 + b"]" * 30000
NESTED_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000


def _with_content(raw: bytes) -> bytes:
    """A valid submission whose content is the raw JSON string given."""
    body = json.dumps(comment(content="PLACEHOLDER")).encode()
    return body.replace(b'"PLACEHOLDER"', raw)


def _post(api, path: str, data: bytes, key: str | None = None,
          content_type: str = "application/json"):
    return api.post(path, key=key, data=data, content_type=content_type)


def _routes(keys) -> list[tuple[str, str | None]]:
    """A JSON route of each kind: public intake, public flags (webargs), moderator, admin."""
    return [
        ("/api/v1/comments", None),
        ("/api/v1/comments/1/flags", None),
        ("/api/v1/moderation/bulk", keys.moderator),
        ("/api/v1/admin/sites", keys.admin),
        ("/api/v1/admin/rules/test", keys.admin),
    ]


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
def test_a_lone_surrogate_is_a_400_on_every_json_route(app, api, keys):
    """Python's decoder takes "\\ud800", which no database can store: it was a 500."""
    intake = _post(api, "/api/v1/comments", _with_content(LONE_SURROGATE))
    assert intake.status_code == 400
    assert "surrogate" in intake.get_json()["message"]
    for path, key in _routes(keys)[1:]:
        answer = _post(api, path, b'{"reason": ' + LONE_SURROGATE + b', "name": '
                       + LONE_SURROGATE + b"}", key)
        assert answer.status_code == 400, (path, answer.get_json())
        assert set(answer.get_json()) == {"code", "status", "message"}


def test_a_surrogate_pair_is_text(app, api):
    """An escaped emoji is two surrogates that make one character: that is fine."""
    answer = _post(api, "/api/v1/comments", _with_content(b'"Nice \\ud83d\\ude00"'))
    assert answer.status_code == 201
    page = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()
    assert [item["content"] for item in page["items"]] == ["Nice \U0001F600"]


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECT], ids=["array", "object"])
def test_deep_nesting_is_a_400_not_a_recursion_error(app, api, keys, body):
    """Under the body limit, [[[[... made Python's decoder recurse past its limit (500);
    the rate limits, which look at the body first, must not trip on it either."""
    for path, key in _routes(keys):
        answer = _post(api, path, body, key)
        assert answer.status_code == 400, (path, answer.status_code)
        assert answer.get_json()["message"] == "The JSON body is nested too deeply."


def test_malformed_and_non_object_bodies_get_one_answer_everywhere(app, api, keys):
    for path, key in _routes(keys):
        broken = _post(api, path, b'{"reason":', key)
        assert broken.status_code == 400
        assert broken.get_json() == {"code": 400, "status": "Bad Request",
                                     "message": "The body is not valid JSON."}
        array = _post(api, path, b"[1, 2]", key)
        assert array.status_code == 400
        assert array.get_json()["message"] == "The body is not a JSON object."


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
def test_a_member_named_twice_is_a_400_on_every_json_route(app, api, keys):
    """Python kept the last `thread` of two, where other parsers (a site's backend, a
    proxy) keep the first: the comment they saw was not the one stored."""
    twice = b'{"thread": "/a", "author_name": "Ann", "author_email": "ann@example.org", ' \
            b'"content": "Hello.", "thread": "/b"}'
    intake = _post(api, "/api/v1/comments", twice)
    assert intake.status_code == 400
    assert intake.get_json()["message"] == (
        "The JSON body gives the same member twice in one object.")
    for path, key in _routes(keys)[1:]:
        nested = _post(api, path, b'{"reason": "spam", "x": {"a": 1, "a": 2}}', key)
        assert nested.status_code == 400, (path, nested.get_json())
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_numbers_json_does_not_have_are_a_400(app, api, keys, value):
    """Python reads NaN and Infinity, and 1e400 as infinity: the caller was told that
    `author_name` was not a valid string (422), not that the body was not JSON."""
    body = b'{"thread": "/a", "author_name": ' + value + b', "author_email": "ann@example.org", ' \
           b'"content": "Hello."}'
    intake = _post(api, "/api/v1/comments", body)
    assert intake.status_code == 400
    assert "not valid JSON" in intake.get_json()["message"]
    for path, key in _routes(keys)[1:]:
        nested = _post(api, path, b'{"reason": "spam", "x": ' + value + b"}", key)
        assert nested.status_code == 400, (path, nested.get_json())


def test_a_body_of_another_type_is_a_415_on_json_routes(app, api, keys):
    """webargs took a text/plain body for no body at all, so the answer was a 422 saying
    the fields were missing."""
    for path, key in _routes(keys)[1:]:
        answer = _post(api, path, b'{"reason": "spam"}', key, content_type="text/plain")
        assert answer.status_code == 415, (path, answer.get_json())


def test_no_body_names_the_missing_fields(app, api, keys):
    answer = api.post("/api/v1/moderation/bulk", key=keys.moderator)
    assert answer.status_code == 422
    assert "ids" in answer.get_json()["errors"]


@pytest.mark.parametrize("raw", [
    b'{"thread": "/t", "author_name": "A", "author_email": "a@example.org", '
    b'"content": "x\xed\xa0\x80"}',                          # UTF-8 bytes of a lone surrogate
    '{"thread": "/t", "content": "\\ud800"}'.encode("utf-16"),  # escaped, in UTF-16
    '{"thread": "/t"}'.encode("utf-32"),
], ids=["utf8-surrogate-bytes", "utf16", "utf32"])
def test_a_body_that_is_not_utf8_is_a_400(app, api, keys, raw):
    """json.loads also guesses UTF-16 and UTF-32 and lets surrogate bytes through, which
    got past the escape check to a 500."""
    for path, key in _routes(keys):
        answer = _post(api, path, raw, key)
        assert answer.status_code == 400, (path, answer.status_code)
        assert answer.get_json()["message"] == "The body is not UTF-8 text."


def test_a_byte_order_mark_is_ignored(api):
    assert _post(api, "/api/v1/comments", b"\xef\xbb\xbf" + json.dumps(comment()).encode()
                 ).status_code == 201


def _chunked(api, path: str, body: bytes, content_type: str):
    return api.client.post(path, input_stream=io.BytesIO(body), headers={
        "Content-Type": content_type, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True})


def test_a_chunked_body_over_the_limit_is_a_413_not_cut_short(app, api):
    """Without a Content-Length, the form parser stopped at the limit and the comment was
    stored cut short (a 201)."""
    form = urlencode({"thread": "/t", "author": "A", "email": "a@example.org",
                      "submit": "x" * 260_000, "comment": "y" * 8_000}).encode()
    assert len(form) > 256 * 1024
    answer = _chunked(api, "/api/v1/comments", form, "application/x-www-form-urlencoded")
    assert answer.status_code == 413
    assert answer.get_json()["code"] == 413
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0


def test_a_chunked_body_within_the_limit_is_taken_whole(app, api):
    body = json.dumps(comment(content="z" * 9_000)).encode()
    answer = _chunked(api, "/api/v1/comments", body, "application/json")
    assert answer.status_code == 201
    with app.app_context():
        assert len(db.session.scalar(sa.select(Comment.content))) == 9_000


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_an_empty_body_names_the_missing_fields_on_intake_too(api, content_type):
    """As on every other route: no body at all, typed or not (`curl -X POST`), is an empty
    object, so the answer says what is missing; a body of another type is still a 415."""
    answer = api.client.post("/api/v1/comments", data=b"", content_type=content_type)
    assert answer.status_code == 422, answer.get_json()
    assert {"thread", "author_name", "author_email", "content"} <= set(
        answer.get_json()["errors"])


@pytest.mark.parametrize("encoded", [
    b"comment=caf%E9+au+lait",   # a Latin-1 page's form, escaped as browsers send it
    b"comment=caf\xe9+au+lait",  # the same byte unescaped
], ids=["escaped", "raw"])
def test_a_form_that_is_not_utf8_is_a_400_not_stored_garbled(app, api, encoded):
    """Werkzeug kept an escape it could not decode as text ("caf%E9" was stored as the
    comment) and dropped a body holding a raw non-UTF-8 byte (a 422 naming every field)."""
    body = b"comment_post_ID=42&author=Ada&email=ada%40example.org&" + encoded
    answer = _post(api, "/api/v1/comments", body,
                   content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "The form is not UTF-8 text."
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0
    utf8 = _post(api, "/api/v1/comments", body.replace(encoded, b"comment=caf%C3%A9"),
                 content_type="application/x-www-form-urlencoded")
    assert utf8.status_code == 201
    with app.app_context():
        assert db.session.scalar(sa.select(Comment.content)) == "café"


def _multipart(*fields: tuple[str, bytes], boundary: bytes = b"B0undary") -> bytes:
    parts = [b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode()
             + b'"\r\n\r\n' + value + b"\r\n" for name, value in fields]
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


MULTIPART = "multipart/form-data; boundary=B0undary"
FORM_FIELDS = (("comment_post_ID", b"42"), ("author", b"Ada"), ("email", b"ada@example.org"))


@pytest.mark.parametrize("content", [
    b"caf\xe9 au lait",       # a Latin-1 page's form
    b"x\xed\xa0\x80 alone",   # the UTF-8 bytes of a lone surrogate
], ids=["latin-1", "surrogate"])
def test_a_multipart_form_that_is_not_utf8_is_a_400_not_stored_garbled(app, api, content):
    """Werkzeug decodes a multipart field that is not UTF-8 with replacement characters, so
    "café" was stored as "caf\ufffd" where the urlencoded form of the same page was a 400."""
    body = _multipart(*FORM_FIELDS, ("comment", content))
    answer = _post(api, "/api/v1/comments", body, content_type=MULTIPART)
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "The form is not UTF-8 text."
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0
    utf8 = _post(api, "/api/v1/comments", _multipart(*FORM_FIELDS, ("comment", b"caf\xc3\xa9")),
                 content_type=MULTIPART)
    assert utf8.status_code == 201
    with app.app_context():
        assert db.session.scalar(sa.select(Comment.content)) == "café"


@pytest.mark.parametrize(("body", "content_type"), [
    (_multipart(*FORM_FIELDS, ("comment", b"cut"))[:-30], MULTIPART),  # ends mid-form
    (b"comment=not+multipart", MULTIPART),
    (_multipart(*FORM_FIELDS, ("comment", b"hello")), "multipart/form-data"),  # no boundary
], ids=["truncated", "not-multipart", "no-boundary"])
def test_a_malformed_multipart_form_is_a_400(api, body, content_type):
    """Werkzeug read a multipart body it could not parse as an empty form: a 422 naming
    every field, where the contract gives a malformed body 400."""
    answer = _post(api, "/api/v1/comments", body, content_type=content_type)
    assert answer.status_code == 400
    assert answer.get_json()["code"] == 400


def test_the_longest_submission_fits_the_body_limit_at_12_bytes_a_character(app, api):
    """A form percent-encodes an emoji as 12 bytes (a CJK character as 9), and a client
    escaping non-ASCII JSON writes one as a 12-byte surrogate pair: at 64 KiB a form
    comment of 7,300 CJK characters, well within the 10,000 allowed, was a 413 (audit)."""
    longest = {"thread": "\U0001f600" * 512, "thread_title": "\U0001f600" * 500,
               "author_name": "\U0001f600" * 100, "author_email": "e@example.org",
               "content": "\U0001f600" * 10_000}
    form = urlencode({"comment_post_ID": longest["thread"], "thread_title":
                      longest["thread_title"], "author": longest["author_name"],
                      "email": "e@example.org", "comment": longest["content"]}).encode()
    assert len(form) > 130_000
    sent = api.post("/api/v1/comments", data=form,
                    content_type="application/x-www-form-urlencoded")
    assert sent.status_code == 201, sent.get_json()
    # Another comment (the same one twice from one address is a 409), escaped to ASCII.
    other = "\U0001f601" * 10_000
    escaped = json.dumps({**longest, "author_email": "f@example.org", "content": other}).encode()
    assert len(escaped) > 130_000
    sent = api.post("/api/v1/comments", data=escaped, content_type="application/json")
    assert sent.status_code == 201, sent.get_json()
    with app.app_context():
        stored = db.session.scalars(sa.select(Comment.content).order_by(Comment.id)).all()
        assert stored == [longest["content"], other]


@pytest.mark.parametrize("mark", ["\ufeff".encode(), b"%EF%BB%BF"])
def test_a_form_opening_with_a_byte_order_mark_is_a_400_not_sent_to_another_site(app, api,
                                                                                  mark):
    """The mark made the first field's name "\ufeffsite", ignored as a theme's own field:
    the comment went to the `default` site instead of the one named (found by an audit);
    sent percent-encoded, it still did."""
    body = b"site=default&comment_post_ID=42&author=Ada&email=ada%40example.org&comment=Hi"
    answer = _post(api, "/api/v1/comments", mark + body,
                   content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 400 and "byte-order mark" in answer.get_json()["message"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0


def test_doubled_slashes_are_a_json_404_not_a_redirect_built_from_the_host_header(client):
    """Werkzeug answered `/api/v1//comments` with an HTML 308 to http://<Host>/...: a
    cache in front that does not key on Host would serve it to others (found by an audit)."""
    answer = client.get("/api/v1//comments?thread=/a", headers={"Host": "evil.example"})
    assert answer.status_code == 404 and answer.is_json
    assert "Location" not in answer.headers


def test_a_body_one_byte_short_of_its_length_is_refused():
    from moderation.body_limit import BODY_FAULT, RequestBody

    seen = {}

    def inner(environ, start_response):
        seen.update(environ)
        return [b""]

    RequestBody(inner, 1000)({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "10",
                              "wsgi.input": io.BytesIO(b"123456789")}, None)
    assert seen.get(BODY_FAULT) == 400


def test_a_chunked_patch_over_the_limit_is_a_413(app, api, keys):
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = b'{"name": "' + b"x" * limit + b'"}'
    answer = api.client.patch("/api/v1/admin/sites/other", data=body,
                              headers={"Authorization": f"Bearer {keys.admin}",
                                       "Content-Type": "application/json",
                                       "Transfer-Encoding": "chunked"})
    assert answer.status_code == 413, answer.get_json()


def test_a_lone_low_surrogate_is_a_400(api):
    body = (b'{"thread": "/t", "author_name": "A", "author_email": "a@example.org", '
            b'"content": "\\udc00 alone"}')
    answer = api.client.post("/api/v1/comments", data=body,
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and "surrogate" in answer.get_json()["message"]
