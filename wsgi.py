"""What gunicorn loads: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from moderation import create_app
from moderation.errors import ConfigError
from moderation.rules import RulesError

try:
    app = create_app()
except RulesError as error:
    # A broken rules file at start is the operator's to fix: say what is wrong, once,
    # rather than behind a traceback through gunicorn's and importlib's frames.
    raise SystemExit(f"moderation: not starting, the rules file is invalid:\n{error}") from None
except ConfigError as error:  # a setting it cannot start with; the message names it
    raise SystemExit(f"moderation: not starting, {error}") from None
