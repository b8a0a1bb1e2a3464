"""The public thread: what readers see of a page's approved comments."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from moderation.errors import NotFound
from moderation.extensions import db
from moderation.models import Comment, Site, Status, Thread
from moderation.render import content_html
from moderation.services.cursors import decode_id, encode_id

# Core tables and statements built once, as in intake (comments.py): the read path is as busy.
_comments = Comment.__table__
_threads = Thread.__table__
_sites = Site.__table__

# The site by slug (no row: no such site), and its thread by key if the page has been
# commented on before (NULL thread columns otherwise). Intake and the thread page use it.
SITE_AND_THREAD = (
    sa.select(_sites.c.id, _threads.c.id, _threads.c.closed, _threads.c.title,
              _threads.c.url)
    .select_from(_sites)
    .outerjoin(_threads, sa.and_(_threads.c.site_id == _sites.c.id,
                                 _threads.c.key == sa.bindparam("thread")))
    .where(_sites.c.slug == sa.bindparam("site"))
)


# What a reader may see of a comment: never the email, IP, user agent, score or hits.
PUBLIC_COLUMNS = (
    _comments.c.id,
    _comments.c.parent_id,
    _comments.c.author_name,
    _comments.c.author_url,
    _comments.c.content,
    _comments.c.created_at,
)
_APPROVED_IN_THREAD = sa.and_(
    _comments.c.thread_id == sa.bindparam("thread_id"),
    _comments.c.status == Status.APPROVED,
)
# Top-level comments in id order from a cursor (0 for the first page); one more than the
# page, to know whether a next page exists.
_ROOTS = (
    sa.select(*PUBLIC_COLUMNS)
    .where(_APPROVED_IN_THREAD, _comments.c.parent_id.is_(None),
           _comments.c.id > sa.bindparam("after"))
    .order_by(_comments.c.id)
    .limit(sa.bindparam("limit"))
)
# The page's replies: those under a root between its first and last. Every approved
# top-level comment in that range is on the page, so a range finds the same replies as a
# list of the roots (plus any under a hidden root, which _nest drops). With the list
# (root_id IN (...)), SQLite chose the (thread_id, status, id) index to skip the sort and
# read every approved comment of the thread for each page; the range makes it seek
# (thread_id, root_id) instead, so a page costs the same in a long thread as in a short one.
_REPLIES = (
    sa.select(*PUBLIC_COLUMNS)
    .where(_APPROVED_IN_THREAD,
           _comments.c.root_id.between(sa.bindparam("first_root"), sa.bindparam("last_root")))
    .order_by(_comments.c.id)
)


def thread_page(site_slug: str, thread_key: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of a thread's approved top-level comments, oldest first, replies nested.

    The result is already in ThreadPageSchema's JSON shape (the route sends it as is).
    """
    connection = db.session.connection()
    found = connection.execute(SITE_AND_THREAD, {"site": site_slug, "thread": thread_key}).first()
    if found is None:
        raise NotFound(f"There is no site '{site_slug}'.")
    _, thread_id, closed, title, _ = found
    page: dict[str, Any] = {
        "site": site_slug,
        "thread": thread_key,
        "title": title,
        "closed": bool(closed),  # an unknown thread is just empty, and open
        "items": [],
        "next_cursor": None,
    }
    listing = ("thread", site_slug, thread_key)
    after = decode_id(cursor, listing) if cursor else 0  # another thread's cursor too: 422
    if thread_id is None:
        return page
    roots = connection.execute(
        _ROOTS, {"thread_id": thread_id, "after": after, "limit": limit + 1}
    ).all()
    if len(roots) > limit:
        roots = roots[:limit]
        page["next_cursor"] = encode_id(roots[-1].id, listing)
    page["items"] = _nest(connection, thread_id, roots)
    return page


# Levels of nesting in a thread page, WordPress's deepest setting. Without a bound, a
# chain of a few hundred replies made the page's JSON too deep to encode (a 500).
MAX_REPLY_DEPTH = 10


def _nest(
    connection: sa.Connection, thread_id: int, roots: list[sa.Row[Any]]
) -> list[dict[str, Any]]:
    """Hang each approved reply under its parent; a reply whose parent is hidden is hidden.

    Past MAX_REPLY_DEPTH levels a reply follows its parent in the parent's own list, as
    WordPress shows them; its parent_id still says which comment it answers.
    """
    if not roots:
        return []
    replies = connection.execute(
        _REPLIES, {"thread_id": thread_id, "first_root": roots[0].id, "last_root": roots[-1].id}
    )
    # Each shown comment: its node, the list that holds it, and its level (1 at the top).
    nodes: dict[int, tuple[dict[str, Any], list[dict[str, Any]], int]] = {}
    items: list[dict[str, Any]] = []
    for row in [*roots, *replies]:
        comment_id, parent_id, author_name, author_url, content, created_at = row
        node = {
            "id": comment_id,
            "parent_id": parent_id,
            "author_name": author_name,
            "author_url": author_url,
            "content": content,
            "content_html": content_html(content),
            "created_at": created_at.isoformat(),
            "replies": [],
        }
        if parent_id is None:
            siblings, level = items, 1
        elif parent_id in nodes:
            parent, parent_siblings, parent_level = nodes[parent_id]
            if parent_level < MAX_REPLY_DEPTH:
                siblings, level = parent["replies"], parent_level + 1
            else:
                siblings, level = parent_siblings, parent_level
        else:
            continue
        siblings.append(node)
        nodes[comment_id] = (node, siblings, level)
    return items


def approved_comment(comment_id: int, *, for_update: bool = False) -> Comment:
    """A published comment, or 404 (readers never learn that a hidden comment exists)."""
    # Locked, it is read again: the session may hold it as read before the lock.
    comment = db.session.get(Comment, comment_id, with_for_update=for_update,
                             populate_existing=for_update)
    if comment is None or comment.status is not Status.APPROVED:
        raise NotFound(f"There is no published comment {comment_id}.")
    return comment


def site_of_comment(comment_id: int, published_only: bool = True) -> str | None:
    """The slug of a comment's site, of a published one unless told otherwise (None if
    there is no such comment)."""
    query = (sa.select(_sites.c.slug)
             .join(_comments, _comments.c.site_id == _sites.c.id)
             .where(_comments.c.id == comment_id))
    if published_only:
        query = query.where(_comments.c.status == Status.APPROVED)
    return db.session.scalar(query)
