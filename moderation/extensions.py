"""Extension instances, unbound: the app factory binds them with init_app()."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, registry


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        # PostgreSQL answers in the session's TimeZone, the database's default, which an
        # operator may have set to local time: the same instant, said in UTC as everywhere.
        return value if value.utcoffset() == dt.timedelta(0) else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    # Enums are stored by their value ("pending"), never by name or a magic number.
    registry = registry(type_annotation_map={
        enum.Enum: sa.Enum(
            enum.Enum,
            native_enum=False,
            length=16,
            values_callable=lambda members: [m.value for m in members],
            validate_strings=True,
        ),
        dt.datetime: UTCDateTime(),
    })


# A request's session ends with the request, so objects need not be reloaded after each
# commit (which would cost a SELECT per object touched after it).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
api = Api()
# Per-route limits are declared where they apply; nothing is limited by default.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
