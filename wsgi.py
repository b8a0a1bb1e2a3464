"""What gunicorn loads: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from moderation import create_app

app = create_app()
