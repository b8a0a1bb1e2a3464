"""A real browser on a site's page: headless Chromium posts the comment form, and the
page's script posts and reads across origins, as sites use the service.

The service and the site's page are served on loopback by two WSGI servers; Chromium
loads the page and its script writes what it saw into the DOM, which ``--dump-dom``
prints. What only a browser checks is checked here: that it follows the form's 303 back
to the page, that CORS lets the site's own page read the answers (preflight included)
and keeps another site's page out, that `content_html` put into a page runs nothing, and
that a human passes the bot traps. `.ci/run` installs Debian's chromium; without it
these tests are skipped.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from moderation.services import sites
from tests.conftest import PERMISSIVE_RULES
from tests.test_submission import stored

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

# The test rules, with the bot traps: a honeypot field on every site, and form tokens on
# the `trapped` site (the others' pages post without one).
RULES = PERMISSIVE_RULES.read_text() + """
honeypot: {field: website_url}
sites:
  trapped:
    form_token: {enabled: true, min_seconds: 4, max_age_seconds: 3600}
"""


@pytest.fixture
def app_config(tmp_path) -> dict[str, Any]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return {"RULES_FILE": str(rules)}

# The comment form of a WordPress theme, submitted into a frame so that the page can
# read where the browser landed (its own origin after the 303). An input named "submit"
# hides form.submit, as in WordPress themes.
ARTICLE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<pre id="out"></pre><iframe name="landing" id="landing"></iframe>
<form id="f" target="landing" method="post" action="{api}/api/v1/comments">
<input type="hidden" name="site" value="news">
<input type="hidden" name="comment_post_ID" value="/story">
<input type="hidden" name="thread_url" value="{page}/article.html">
<input name="author" value="Zoë Reader"><input name="email" value="zoe@example.org">
<input name="url" value="www.zoe.example">
<textarea name="comment">Lovely piece — thanks! ✨</textarea>
<input type="checkbox" name="wp-comment-cookies-consent" value="yes" checked>
<input type="submit" name="submit" value="Post Comment">
</form>
<script>
const frame = document.getElementById("landing");
frame.addEventListener("load", () => {{
  let where;
  try {{ where = frame.contentWindow.location.href; }} catch (e) {{ where = "elsewhere"; }}
  document.getElementById("out").textContent = JSON.stringify({{landed: where}});
}});
if (!location.search) HTMLFormElement.prototype.submit.call(document.getElementById("f"));
</script></body></html>"""

# A page's script: the form's data by fetch (to show the answer in the page), a JSON
# post with an Idempotency-Key (a preflight), the thread, and another site's thread.
SCRIPT = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<pre id="out"></pre><script>
const api = "{api}/api/v1/comments";
const seen = {{}};
async function read(name, request) {{
  try {{
    const answer = await request;
    seen[name] = {{status: answer.status, body: await answer.json(),
                   request_id: answer.headers.get("X-Request-ID")}};
  }} catch (e) {{ seen[name] = {{error: String(e)}}; }}
}}
(async () => {{
  const form = new FormData();
  for (const [k, v] of [["site", "news"], ["comment_post_ID", "/story"], ["author", "Form Data"],
                        ["email", "fd@example.org"], ["thread_url", "{page}/script.html"],
                        ["comment", "Posted by the page's script."]]) form.append(k, v);
  await read("form_by_fetch", fetch(api, {{method: "POST", body: form}}));
  await read("json", fetch(api, {{method: "POST",
    headers: {{"Content-Type": "application/json", "Idempotency-Key": "page-1"}},
    body: JSON.stringify({{site: "news", thread: "/story", author_name: "Jay",
                           author_email: "jay@example.org", content: "Posted as JSON."}})}}));
  await read("thread", fetch(api + "?site=news&thread=/story"));
  await read("other_site", fetch(api + "?site=default&thread=/story"));
  document.getElementById("out").textContent = JSON.stringify(seen);
}})();
</script></body></html>"""


class Server:
    """A WSGI app served on a free loopback port by a thread, for the test's duration."""

    def __init__(self, wsgi_app: Any) -> None:
        self._server = make_server("127.0.0.1", 0, wsgi_app)
        self.origin = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


class StoppedClock:
    """``time.time`` for the service while Chromium runs: it stands still, and only a page's
    /wait moves it on. A form posted at once is then 0 s after its form token, and one
    posted after /wait?5 is 5 s after it, however slow the machine: on the real clock a
    machine stalling 4 s (the trapped site's min_seconds) let the hasty post through. The
    page cannot wait on its own timers: Chromium's virtual time fast-forwards them."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def page_server(pages: dict[str, str], clock: StoppedClock) -> Server:
    def site(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/wait":
            clock.advance(float(environ["QUERY_STRING"]))
            start_response("204 No Content", [])
            return []
        page = pages.get(environ["PATH_INFO"])
        if page is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page.encode()]

    return Server(site)


@pytest.fixture
def browser_setup(app, monkeypatch) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    pages: dict[str, str] = {}
    clock = StoppedClock()
    monkeypatch.setattr(time, "time", clock)
    service, site = Server(app), page_server(pages, clock)
    with app.app_context():
        sites.create_site("news", "News", [site.origin])
        sites.create_site("trapped", "Trapped", [site.origin])
    yield service, site, pages
    site.stop()
    service.stop()


def dump_dom(url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """Chromium's run on ``url``: the page's DOM, once it settles, on stdout."""
    return subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--virtual-time-budget=15000", *flags, "--dump-dom", url],
        capture_output=True, text=True, timeout=60,
    )


def browse(url: str) -> dict[str, Any]:
    """What the page's script wrote into <pre id="out">, once Chromium settles."""
    run = dump_dom(url)
    found = re.search(r'<pre id="out">(.*?)</pre>', run.stdout, re.S)
    assert found and found.group(1), (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
    return json.loads(html.unescape(found.group(1)))


def test_the_comment_form_goes_back_to_the_page_with_the_outcome(app, browser_setup):
    service, site, pages = browser_setup
    pages["/article.html"] = ARTICLE.format(api=service.origin, page=site.origin)
    landed = browse(f"{site.origin}/article.html")["landed"]
    match = re.fullmatch(
        re.escape(f"{site.origin}/article.html?comment_status=approved&comment_id=")
        + r"(\d+)#comment-\1",
        landed,
    )
    assert match, landed
    comment = stored(app, int(match.group(1)))
    assert (comment.author_name, comment.author_url, comment.content) == (
        "Zoë Reader", "http://www.zoe.example", "Lovely piece — thanks! ✨")
    assert comment.user_agent and "Chrome" in comment.user_agent


def test_the_pages_script_reads_its_own_sites_answers_and_no_other(app, browser_setup):
    service, site, pages = browser_setup
    pages["/script.html"] = SCRIPT.format(api=service.origin, page=site.origin)
    seen = browse(f"{site.origin}/script.html")
    assert seen["form_by_fetch"]["status"] == 201, seen
    assert seen["form_by_fetch"]["body"]["status"] == "approved"
    assert seen["json"]["status"] == 201, seen
    assert seen["json"]["request_id"]  # exposed to the page for support requests
    thread = seen["thread"]["body"]
    assert [item["author_name"] for item in thread["items"]] == ["Form Data", "Jay"]
    assert "author_email" not in json.dumps(thread)
    # The default site allows no origin: its answers are not the news site's page's to read.
    assert "Failed to fetch" in seen["other_site"]["error"]


# A reader's page that shows the thread as the README says it may: content_html as HTML,
# author_url in href, the name as text. It reports whether any payload ran, which
# elements the comments made and where their links go.
READER = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<div id="thread"></div><pre id="out"></pre><script>
window.pwned = 0;
(async () => {{
  const answer = await fetch("{api}/api/v1/comments?site=news&thread=/story&limit=100");
  const thread = document.getElementById("thread");
  for (const item of (await answer.json()).items) {{
    const box = document.createElement("div");
    box.innerHTML = item.content_html;
    if (item.author_url) {{
      const author = document.createElement("a");
      author.href = item.author_url;
      author.textContent = item.author_name;
      box.prepend(author);
    }}
    thread.append(box);
  }}
  setTimeout(() => {{
    const links = [...thread.querySelectorAll("a")];
    document.getElementById("out").textContent = JSON.stringify({{
      pwned: window.pwned,
      comments: thread.children.length,
      tags: [...new Set([...thread.children].flatMap(
        (box) => [...box.querySelectorAll("*")].map((e) => e.tagName)))].sort(),
      hrefs: links.map((a) => a.href),
      rels: links.filter((a) => a.parentElement.tagName === "P").map((a) => a.rel),
    }});
  }}, 1000);
}})();
</script></body></html>"""

PAYLOADS = [
    "<script>window.pwned = 1</script>",
    '<img src=x onerror="window.pwned = 2">',
    'See https://example.com/"onmouseover="window.pwned=3" and https://example.com/\'x',
    "http://x.example/<svg/onload=window.pwned=4>",
    "javascript:window.pwned=5",
    '<a href="javascript:window.pwned=6">click</a>',
    "</p><iframe src=javascript:window.pwned=7></iframe>",
    "https://a.example/?a=1&b=2&lt;script&gt; (https://en.wikipedia.org/wiki/Mercury_(planet))",
    "line one\n\nline <b>two</b>\nline three",
]


def test_a_page_that_shows_content_html_runs_none_of_the_comments(app, api, browser_setup):
    service, site, pages = browser_setup
    for number, payload in enumerate(PAYLOADS):
        answer = api.post("/api/v1/comments", {
            "site": "news", "thread": "/story", "author_name": f"<b>Reader {number}</b>",
            "author_email": f"r{number}@example.org", "content": payload,
            "author_url": f"https://reader{number}.example/?q=<&>" if number == 0 else None,
        })
        if number == 0:  # a URL a page could not put into href as it comes
            assert answer.status_code == 422
            answer = api.post("/api/v1/comments", {
                "site": "news", "thread": "/story", "author_name": "<b>Reader 0</b>",
                "author_email": "r0@example.org", "content": payload,
                "author_url": "https://reader0.example/?q=a&b=c"})
        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json()["status"] == "approved"
    pages["/reader.html"] = READER.format(api=service.origin)
    seen = browse(f"{site.origin}/reader.html")
    assert seen["comments"] == len(PAYLOADS)
    assert seen["pwned"] == 0
    assert set(seen["tags"]) <= {"A", "BR", "P"}, seen["tags"]
    assert all(href.startswith(("http://", "https://")) for href in seen["hrefs"]), seen
    assert seen["rels"] and set(seen["rels"]) == {"nofollow ugc noopener"}
    assert "https://en.wikipedia.org/wiki/Mercury_(planet)" in seen["hrefs"]


# A form with both traps, as a human fills it in: the honeypot left empty (hidden by CSS),
# the form token fetched when the page loads, the form sent seconds later. A bot's copy
# posts at once.
TRAPPED = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<pre id="out"></pre>
<iframe name="human"></iframe><iframe name="bot"></iframe>
<form id="human" target="human" method="post" action="{api}/api/v1/comments">
<input type="hidden" name="site" value="trapped">
<input type="hidden" name="comment_post_ID" value="/story">
<input type="hidden" name="thread_url" value="{page}/trapped.html">
<input type="hidden" name="form_token">
<p style="display:none"><input name="website_url" autocomplete="off"></p>
<input name="author" value="Human"><input name="email" value="human@example.org">
<textarea name="comment">Took my time to write this.</textarea>
</form>
<form id="bot" target="bot" method="post" action="{api}/api/v1/comments">
<input type="hidden" name="site" value="trapped">
<input type="hidden" name="comment_post_ID" value="/story">
<input type="hidden" name="thread_url" value="{page}/trapped.html">
<input type="hidden" name="form_token">
<input name="author" value="Bot"><input name="email" value="bot@example.org">
<textarea name="comment">Posted the moment the page loaded.</textarea>
</form>
<script>
const landed = {{}};
for (const name of ["human", "bot"]) {{
  document.querySelector(`iframe[name=${{name}}]`).addEventListener("load", (event) => {{
    try {{ landed[name] = event.target.contentWindow.location.href; }}
    catch (e) {{ landed[name] = "elsewhere"; }}
    document.getElementById("out").textContent = JSON.stringify(landed);
  }});
}}
(async () => {{
  if (location.search) return;  // the page again, in a frame, after a post
  const answer = await fetch("{api}/api/v1/form-token?site=trapped&thread=/story");
  const token = (await answer.json()).form_token;
  for (const form of document.forms) form.elements.form_token.value = token;
  const botLanded = new Promise((resolve) => document.querySelector("iframe[name=bot]")
    .addEventListener("load", resolve, {{once: true}}));
  HTMLFormElement.prototype.submit.call(document.getElementById("bot"));
  await botLanded;  // its post made, before the wait (else Chromium may send it after)
  await fetch("/wait?5");
  HTMLFormElement.prototype.submit.call(document.getElementById("human"));
}})();
</script></body></html>"""


def test_a_human_in_a_browser_passes_the_bot_traps_and_a_hasty_post_does_not(
        app, browser_setup):
    service, site, pages = browser_setup
    pages["/trapped.html"] = TRAPPED.format(api=service.origin, page=site.origin)
    landed = browse(f"{site.origin}/trapped.html")
    outcomes = {}
    for name, url in landed.items():
        match = re.search(r"comment_status=(\w+)&comment_id=(\d+)", url)
        assert match and url.startswith(f"{site.origin}/trapped.html?"), landed
        outcomes[name] = (match.group(1), stored(app, int(match.group(2))))
    assert set(outcomes) == {"human", "bot"}, landed
    status, comment = outcomes["human"]
    assert (status, comment.status.value) == ("approved", "approved")
    status, comment = outcomes["bot"]
    assert (status, comment.status.value) == ("pending", "spam")  # spammers learn nothing


def test_the_docs_page_renders_the_spec_with_nothing_from_the_internet(browser_setup):
    """ReDoc comes from the service itself (it came from a CDN: blank offline)."""
    service, _, _ = browser_setup
    # Any host but loopback is unreachable, as on a machine without internet.
    run = dump_dom(f"{service.origin}/docs",
                   "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    assert "Submit a comment from a site" in run.stdout, run.stdout[-2000:]
    assert "Approved comments of one thread" in run.stdout


def test_the_docs_page_asks_no_other_host_for_anything(browser_setup, tmp_path):
    """ReDoc's bundle shows a logo from cdn.redoc.ly: each visit to the docs told Redocly
    who read them (audit). The page's policy keeps it to the service's own host."""
    service, _, _ = browser_setup
    log = tmp_path / "net.json"
    run = dump_dom(f"{service.origin}/docs", f"--log-net-log={log}",
                   "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", "--disable-default-apps")
    assert "Submit a comment from a site" in run.stdout, run.stdout[-2000:]
    asked = set(re.findall(r'"url":"(https?://[^/"]+)', log.read_text()))
    # Less Chromium's own (updates, sync, autofill), which no page asks for.
    asked = {host for host in asked if not re.search(r"\.google(apis)?\.com$", host)}
    assert asked == {service.origin}, asked
