"""The OpenAPI spec says every status a route can answer (the contract asks for it)."""

from __future__ import annotations

import re

from tests.conftest import comment

METHODS = ("get", "post", "put", "patch", "delete")


def _operations(api):
    spec = api.get("/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def test_every_json_body_route_says_400_413_and_415(api):
    with_body = [(m, p, op) for m, p, op in _operations(api) if "requestBody" in op]
    assert len(with_body) >= 10
    for method, path, operation in with_body:
        assert {"400", "413", "415"} <= set(operation["responses"]), (method, path)


def test_a_body_of_another_type_and_too_big_a_body_are_answered_as_said(api, keys):
    too_big = api.post("/api/v1/moderation/bulk", key=keys.moderator,
                       data=b'{"ids": [' + b"1," * 140_000 + b'1], "action": "spam"}',
                       content_type="application/json")
    assert too_big.status_code == 413
    assert too_big.get_json()["code"] == 413


def test_intake_says_it_may_take_a_site_key_and_answer_401(api):
    operation = dict((m + p, op) for m, p, op in _operations(api))["POST/api/v1/comments"]
    assert {} in operation["security"] and {"bearerAuth": []} in operation["security"]
    assert "401" in operation["responses"]
    assert "Location" in operation["responses"]["303"]["headers"]
    assert api.post("/api/v1/comments", comment(), key="mk_0123456789ab_bad").status_code == 401


def test_the_form_body_names_the_wordpress_fields(api):
    operation = dict((m + p, op) for m, p, op in _operations(api))["POST/api/v1/comments"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"author", "email", "url", "comment", "comment_post_ID",
            "comment_parent"} <= set(form["properties"])


def test_401s_document_their_challenge_and_intake_its_multipart_form(api):
    operations = dict((m + p, op) for m, p, op in _operations(api))
    queue = operations["GET/api/v1/moderation/queue"]
    assert "WWW-Authenticate" in queue["responses"]["401"]["headers"]
    assert "multipart/form-data" in operations["POST/api/v1/comments"]["requestBody"]["content"]


def test_documented_answers_add_no_wrapper_around_the_views(app, api):
    """The spec's doc and error answers are on the views, not in wrappers run per request.

    flask-smorest's @doc and @alt_response each wrapped the view in a function that only
    called it; intake ran under 14 of them. The answers are documented all the same.
    """
    intake = api.get("/openapi.json").get_json()["paths"]["/api/v1/comments"]["post"]
    assert {"201", "303", "400", "403", "409", "422", "429", "503"} <= set(intake["responses"])
    for endpoint, view in app.view_functions.items():
        layers = []
        while view is not None:
            layers.append(view.__code__.co_qualname if hasattr(view, "__code__") else "")
            view = getattr(view, "__wrapped__", None)
        doc_only = [name for name in layers
                    if name.startswith(("ResponseMixin.alt_response", "Blueprint.doc"))]
        assert not doc_only, (endpoint, doc_only)


def test_the_spec_says_which_key_names_are_refused(api, keys):
    """A key name with a format character (a soft hyphen, a zero-width space) is a 422,
    which the spec's pattern did not say: schemathesis sent one as valid data."""
    import re

    operation = dict((m + p, op) for m, p, op in _operations(api))["POST/api/v1/admin/keys"]
    variants = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    patterns = {variant["properties"]["name"]["pattern"] for variant in variants}
    assert len(patterns) == 1
    pattern = re.compile(patterns.pop())
    for name in ["mod\u00aderator", "mod\u200b", "\ufeffbom", "ok\u2060", "mo\u0085d",
                 "\u009bmod", "mod\u2028x", "mod\u2029x"]:
        answer = api.post("/api/v1/admin/keys", {"name": name, "role": "admin"}, key=keys.admin)
        assert answer.status_code == 422, name
        assert not pattern.search(name), name
    for name in ["modérateur", "bot 🤖", "Ada's key"]:
        answer = api.post("/api/v1/admin/keys", {"name": name, "role": "admin"}, key=keys.admin)
        assert answer.status_code == 201, name
        assert pattern.search(name), name


def test_a_moderators_comment_detail_lists_no_replies(api):
    """Only the public thread read nests replies; a detail never carries them."""
    schemas = api.get("/openapi.json").get_json()["components"]["schemas"]
    assert "replies" in schemas["PublicComment"]["properties"]
    assert "replies" not in schemas["CommentDetail"]["properties"]


def test_the_spec_says_a_blank_thread_is_refused(api):
    """A thread argument is trimmed before its length is checked, so `thread=%09` is a 422;
    the spec allowed it, and schemathesis sent it as valid data."""
    import re

    operations = dict((m + p, op) for m, p, op in _operations(api))
    for path in ("/api/v1/comments", "/api/v1/form-token"):
        thread = next(parameter for parameter in operations["GET" + path]["parameters"]
                      if parameter["name"] == "thread")
        pattern = re.compile(thread["schema"]["pattern"])
        for blank in ("\t", "   "):
            assert api.get(path, query_string={"thread": blank}).status_code == 422
            assert not pattern.search(blank), (path, blank)
        assert api.get(path, query_string={"thread": " /a "}).status_code == 200
        assert pattern.search(" /a ")


def test_the_spec_says_which_control_characters_text_fields_refuse(api, keys):
    """C1 controls (U+0080-U+009F) are refused in every text field, U+2028/U+2029 in
    one-line fields only; the spec's patterns say the same as the validators, or
    schemathesis sends refused text as valid data."""
    import re

    operations = dict((m + p, op) for m, p, op in _operations(api))

    def pattern(operation, field):
        body = operations[operation]["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" in body:
            name = body["$ref"].rsplit("/", 1)[-1]
            body = api.get("/openapi.json").get_json()["components"]["schemas"][name]
        return re.compile(body["properties"][field]["pattern"])

    site_name = pattern("POST/api/v1/admin/sites", "name")
    author_name = pattern("POST/api/v1/comments", "author_name")
    content = pattern("POST/api/v1/comments", "content")
    for number, text in enumerate(["a\u0085b", "a\u009bb", "a\u2028b", "a\u2029b"]):
        answer = api.post("/api/v1/admin/sites", {"slug": f"s{number}", "name": text},
                          key=keys.admin)
        assert answer.status_code == 422 and not site_name.search(text), repr(text)
        answer = api.post("/api/v1/comments", comment(author_name=text))
        assert answer.status_code == 422 and not author_name.search(text), repr(text)
    for text in ["a\u0001b", "a\u0085b", "a\u009bb"]:
        answer = api.post("/api/v1/comments", comment(content=text))
        assert answer.status_code == 422 and not content.search(text), repr(text)
    for text in ["a\u2028b", "a\u00a0b"]:  # a line separator, a no-break space: text
        answer = api.post("/api/v1/comments", comment(content=text, thread=f"/{ord(text[1])}"))
        assert answer.status_code == 201 and content.search(text), repr(text)
    assert site_name.search("Les nouvelles \u00a0\u00e9t\u00e9") and author_name.search("Zo\u00eb")


def test_every_route_the_app_serves_is_in_the_spec(app, api):
    """The contract's spec lists every route: /openapi.json and /docs, which flask-smorest
    serves itself outside any blueprint, were missing (a PostgreSQL audit)."""
    spec = api.get("/openapi.json").get_json()
    served = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()
              if not rule.rule.startswith("/static/")}
    assert served == set(spec["paths"])
    assert api.get("/docs").content_type.startswith("text/html")


def test_the_app_starts_with_the_spec_served_elsewhere(database_url):
    """Putting /openapi.json and /docs in the spec looked them up where they are served by
    default: another MODERATION_OPENAPI_URL_PREFIX stopped the app at start (a review)."""
    from tests.conftest import close_app, make_app

    app = make_app(database_url, OPENAPI_URL_PREFIX="/api/spec")
    try:
        spec = app.test_client().get("/api/spec/openapi.json").get_json()
        assert "/api/v1/comments" in spec["paths"]
    finally:
        close_app(app)


def test_every_email_the_spec_takes_says_it_is_an_email(api):
    """Schemathesis (and any client generator) reads `format: email` to send real ones."""
    spec = api.get("/openapi.json").get_json()

    def resolved(schema):
        if "$ref" in schema:
            return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    taken = []
    for operation in (op for _, _, op in _operations(api)):
        for parameter in operation.get("parameters", []):
            taken.append((parameter["name"], resolved(parameter["schema"])))
        for content in operation.get("requestBody", {}).get("content", {}).values():
            properties = resolved(content["schema"]).get("properties", {})
            taken += [(name, resolved(field)) for name, field in properties.items()]
    emails = [(name, field) for name, field in taken if "email" in name]
    assert len(emails) >= 4
    for name, field in emails:
        assert field.get("format") == "email", name
