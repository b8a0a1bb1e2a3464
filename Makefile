# The README's commands. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Migrate the embedded SQLite database (creating the first admin key once), then serve.
run: $(STAMP)
	$(BIN)/moderation init
	PROMETHEUS_MULTIPROC_DIR=$${PROMETHEUS_MULTIPROC_DIR:-instance/metrics} \
		exec $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The whole suite on SQLite; then again on PostgreSQL when TEST_DATABASE_URL names one.
test: $(STAMP)
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest
	if [ -n "$$TEST_DATABASE_URL" ]; then $(BIN)/python -m pytest; fi

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
