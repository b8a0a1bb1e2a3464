"""Typed SQLAlchemy models: what the service stores."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from moderation.extensions import db


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Status(enum.Enum):
    """Where a comment stands. Only `approved` is ever shown to readers."""

    PENDING = "pending"
    APPROVED = "approved"
    SPAM = "spam"
    REJECTED = "rejected"
    DELETED = "deleted"


class Role(enum.Enum):
    ADMIN = "admin"
    MODERATOR = "moderator"
    SITE = "site"


class Site(db.Model):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    # JSON list of origins ("https://news.example") allowed to post from a browser.
    allowed_origins: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Thread(db.Model):
    __tablename__ = "threads"
    __table_args__ = (sa.UniqueConstraint("site_id", "key", name="uq_threads_site_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(512))
    title: Mapped[str | None] = mapped_column(sa.String(500))
    url: Mapped[str | None] = mapped_column(sa.String(2048))
    closed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship()


class Comment(db.Model):
    __tablename__ = "comments"
    __table_args__ = (
        # The moderation queue pages by (status, id) within a site: keyset, no OFFSET.
        sa.Index("ix_comments_site_status_id", "site_id", "status", "id"),
        sa.Index("ix_comments_site_status_score_id", "site_id", "status", "score", "id"),
        # The public thread read: approved top-level comments of one thread, oldest first.
        sa.Index("ix_comments_thread_status_parent_id", "thread_id", "status", "parent_id", "id"),
        # Its ORDER BY id walks this one (the IS NULL above does not give id order, so the
        # planner fell back to scanning the primary key: 8 ms per page at 1M comments).
        sa.Index("ix_comments_thread_status_id", "thread_id", "status", "id"),
        sa.Index("ix_comments_thread_root", "thread_id", "root_id"),
        # Duplicate detection and commenter history.
        sa.Index("ix_comments_thread_content_hash", "thread_id", "content_hash"),
        sa.Index("ix_comments_email_hash_id", "email_hash", "id"),
        sa.Index("ix_comments_created_at", "created_at"),
        # An id names one comment for good (a moderator's open page, an ETag, a replayed
        # Idempotency-Key answer): SQLite would otherwise hand a purged comment's id out
        # again. PostgreSQL's sequences never do. (Migration 0008.)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    thread_id: Mapped[int] = mapped_column(sa.ForeignKey("threads.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("comments.id"))
    # The top of the reply chain, so a page of threads fetches its replies in one query.
    root_id: Mapped[int | None] = mapped_column()
    status: Mapped[Status] = mapped_column(default=Status.PENDING)
    # Why the comment has its status: "rules", "moderator", "flagged", "erased".
    status_reason: Mapped[str] = mapped_column(sa.String(32), default="rules")

    author_name: Mapped[str] = mapped_column(sa.String(100))
    author_email: Mapped[str] = mapped_column(sa.String(320))
    # HMAC of the normalised email: the commenter's identity for trust, without the address.
    email_hash: Mapped[str] = mapped_column(sa.String(64))
    author_url: Mapped[str | None] = mapped_column(sa.String(2048))
    content: Mapped[str] = mapped_column(sa.Text)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    referrer: Mapped[str | None] = mapped_column(sa.String(2048))
    # The page's title and URL as this comment sent them: they name the thread (if it has
    # no name yet) once the comment is approved, by the rules or by a moderator.
    thread_title: Mapped[str | None] = mapped_column(sa.String(500))
    thread_url: Mapped[str | None] = mapped_column(sa.String(2048))

    score: Mapped[float] = mapped_column(default=0.0)
    hits: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    rules_version: Mapped[str] = mapped_column(sa.String(64), default="")
    # What the classifier learned from this comment ("spam"/"ham"), so a reversal un-learns it.
    learned_as: Mapped[str | None] = mapped_column(sa.String(8))
    flag_count: Mapped[int] = mapped_column(default=0)

    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    site: Mapped[Site] = relationship()
    thread: Mapped[Thread] = relationship()


class CommentHit(db.Model):
    """One rule that hit one comment: lets the queue filter by rule with an index."""

    __tablename__ = "comment_hits"
    __table_args__ = (sa.Index("ix_comment_hits_rule_comment", "rule", "comment_id"),)

    comment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    rule: Mapped[str] = mapped_column(sa.String(64), primary_key=True)


class Flag(db.Model):
    """A reader's report of an approved comment; one per reporter per comment."""

    __tablename__ = "flags"
    __table_args__ = (
        sa.UniqueConstraint("comment_id", "reporter_hash", name="uq_flags_comment_reporter"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(sa.ForeignKey("comments.id", ondelete="CASCADE"))
    reporter_hash: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# The audit log's actors that are not keys (its other actors are key names, so no key
# may take these): readers' flags, and an operator at the shell.
FLAG_ACTOR = "readers"
CLI_ACTOR = "command line"


class Decision(db.Model):
    """The audit log: every status change made by a person (or by an erasure), and every
    thread a moderator closed or opened."""

    __tablename__ = "decisions"
    __table_args__ = (
        sa.Index("ix_decisions_site_id", "site_id", "id"),
        sa.Index("ix_decisions_comment_id", "comment_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sites.id", ondelete="SET NULL"))
    comment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("comments.id", ondelete="SET NULL")
    )
    # The thread a moderator closed or opened (actions "close", "open"; migration 0009).
    thread: Mapped[str | None] = mapped_column(sa.String(512))
    actor: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(16))
    old_status: Mapped[str | None] = mapped_column(sa.String(16))
    new_status: Mapped[str | None] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


key_sites = sa.Table(
    "key_sites",
    db.metadata,
    sa.Column("key_id", sa.ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("site_id", sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)


class ApiKey(db.Model):
    """An API key. Only a SHA-256 of the secret is kept; the secret is shown once."""

    __tablename__ = "api_keys"
    __table_args__ = (
        # One unrevoked key per name: the audit log names actors by key name (0004).
        sa.Index("uq_api_keys_active_name", "name", unique=True,
                 sqlite_where=sa.text("revoked_at IS NULL"),
                 postgresql_where=sa.text("revoked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[Role] = mapped_column()
    # The public part of the key, to find the row without scanning hashes.
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()

    sites: Mapped[list[Site]] = relationship(secondary=key_sites, lazy="selectin")


class IdempotencyRecord(db.Model):
    """The first answer to a submission with an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "key", name="uq_idempotency_site_key"),
        sa.Index("ix_idempotency_records_comment_id", "comment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    # The comment it stored (0010): an erasure finds the record by it, a hard rejection's
    # answer included, which names no comment.
    comment_id: Mapped[int | None] = mapped_column(sa.ForeignKey(
        "comments.id", ondelete="CASCADE", name="fk_idempotency_records_comment_id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int] = mapped_column()
    response_body: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ClassifierToken(db.Model):
    """How often a token was seen in comments moderators called spam or ham."""

    __tablename__ = "classifier_tokens"

    token: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    spam: Mapped[int] = mapped_column(default=0)
    ham: Mapped[int] = mapped_column(default=0)
    # The logistic half's weight: the sum of the steps of the learned comments with the token.
    weight: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")


class ClassifierTotal(db.Model):
    """Message counts per label ("spam", "ham"): the denominators of token probabilities."""

    __tablename__ = "classifier_totals"

    label: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    messages: Mapped[int] = mapped_column(default=0)
    # The logistic half's bias, the share added by the comments learned under this label.
    weight: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")


class ClassifierStep(db.Model):
    """What one learned comment added to the weight of each of its tokens, to be taken back."""

    __tablename__ = "classifier_steps"

    comment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[float] = mapped_column(sa.Float)
    # The tokens it taught, as a JSON list: un-learning takes back exactly these, even after
    # the tokenizer or the classifier's fields have changed (NULL: learned before 0005).
    tokens: Mapped[str | None] = mapped_column(sa.Text)


class SecretFingerprint(db.Model):
    """Which server secret keyed this database's hashes: an HMAC of a fixed text under
    it (0012), never the secret. Instances that each made their own secret (replicas with
    a volume each, a shell with another instance folder) hash an address differently, and
    an erasure or an export from one found none of the comments stored by another."""

    __tablename__ = "secret_fingerprint"

    id: Mapped[int] = mapped_column(primary_key=True)  # 1: one secret per database
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
