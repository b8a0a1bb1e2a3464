# A slim image that migrates its database, then serves under gunicorn as a non-root user.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODERATION_INSTANCE_PATH=/data \
    MODERATION_MIGRATIONS_DIR=/app/migrations \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics \
    GUNICORN_BIND=0.0.0.0:8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY moderation ./moderation
COPY migrations ./migrations
COPY wsgi.py gunicorn.conf.py ./
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --create-home moderation

USER 10001
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

# Migrate on every start (idempotent), then hand PID 1 to gunicorn for clean signals.
# The first admin key goes to a file in the volume, not to the output (the container log).
CMD ["sh", "-c", "moderation init --key-file /data/first-admin-key && exec gunicorn -c gunicorn.conf.py wsgi:app"]
