# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint system-test-deps browser-deps serve-prepare

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

serve-prepare: install
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py load_catalogue
	$(BIN)/python manage.py load_demo

run: serve-prepare
	@echo ""
	@echo "  OSA tracker: http://127.0.0.1:$(PORT)/admin/"
	@echo "  Demo logins (password demo-osa-2026): compliance, reviewer, manager, auditor;"
	@echo "  'elsewhere' belongs to a second organisation and sees none of the first's data."
	@echo ""
	DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# PostgreSQL for the throwaway test server; installed from Debian when missing.
system-test-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { echo "Installing PostgreSQL (Debian package) for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# Debian's chromium for the browser tests; Playwright drives it and never downloads a browser.
browser-deps:
	@test -x /usr/bin/chromium || { echo "Installing chromium (Debian package) for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/python manage.py makemigrations --check --dry-run -v0

test: install system-test-deps browser-deps lint
	@echo "== test suite on SQLite"
	env -u DATABASE_URL $(BIN)/pytest
	@echo "== test suite on a throwaway PostgreSQL"
	$(BIN)/python -m tests.servers postgres -- $(BIN)/pytest
