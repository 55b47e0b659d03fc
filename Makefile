# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint bench load mutation system-test-deps browser-deps pdf-deps serve-prepare

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# WeasyPrint (the PDFs) loads pango at run time: the app cannot start without it.
install: $(VENV)/.installed pdf-deps

serve-prepare: install
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py load_catalogue
	$(BIN)/python manage.py load_demo

# The web server, a Celery worker and beat, stopped together by Ctrl-C. Without REDIS_URL the
# broker is kombu's file-system transport under var/broker/: a real worker, no server.
run: serve-prepare
	@echo ""
	@echo "  OSA tracker: http://127.0.0.1:$(PORT)/admin/"
	@echo "  API: http://127.0.0.1:$(PORT)/api/v1/  (docs: http://127.0.0.1:$(PORT)/api/docs/)"
	@echo "  Demo logins (password demo-osa-2026): compliance, reviewer, manager, auditor;"
	@echo "  'elsewhere' belongs to a second organisation and sees none of the first's data."
	@echo "  Reminder e-mails are written to var/mail/; the Celery worker and beat run alongside."
	@echo ""
	@trap 'trap - INT TERM EXIT; kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	$(BIN)/celery -A tracker worker --loglevel=INFO --pool=solo --without-gossip --without-mingle & \
	$(BIN)/celery -A tracker beat --loglevel=INFO & \
	DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# PostgreSQL and Redis for the throwaway test servers; installed from Debian when missing.
system-test-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { echo "Installing PostgreSQL (Debian package) for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@command -v redis-server >/dev/null || \
	  { echo "Installing Redis (Debian package) for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# Debian's chromium for the browser tests; Playwright drives it and never downloads a browser.
browser-deps:
	@test -x /usr/bin/chromium || { echo "Installing chromium (Debian package) for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# Debian's pango for WeasyPrint, and DejaVu, the PDFs' font (from the machine, never a URL).
pdf-deps:
	@{ ls /usr/lib/*/libpangoft2-1.0.so.0 && test -d /usr/share/fonts/truetype/dejavu; } >/dev/null 2>&1 || \
	  { echo "Installing pango and the DejaVu fonts (Debian packages) for the PDFs"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run -v0

# The suite runs twice at once, each with its own var/: on SQLite (its output is kept in
# var/test-sqlite.log and shown when it ends) and on a throwaway PostgreSQL with a throwaway
# Redis as the Celery broker (shown as it runs). The PostgreSQL leg waits on its servers
# much of the time, so together they take little longer than it does alone.
test: install system-test-deps browser-deps lint
	@mkdir -p var
	@echo "== test suite on SQLite (in the background) and on PostgreSQL with Redis"
	@env -u DATABASE_URL -u REDIS_URL TRACKER_VAR_DIR=$(CURDIR)/var/test-sqlite \
	  $(BIN)/pytest > var/test-sqlite.log 2>&1 & lite=$$!; \
	TRACKER_VAR_DIR=$(CURDIR)/var/test-postgres \
	  $(BIN)/python -m tests.servers postgres redis -- $(BIN)/pytest; pg=$$?; \
	wait $$lite; sqlite=$$?; \
	echo "== test suite on SQLite (exit $$sqlite)"; cat var/test-sqlite.log; \
	echo "== PostgreSQL exit $$pg, SQLite exit $$sqlite"; \
	test $$pg -eq 0 && test $$sqlite -eq 0
	@echo "== mutation testing: the law modules changed since $(MUTATION_BASE) in full, a fixed sample of the others"
	$(BIN)/python -m tests.mutation --changed-since $(MUTATION_BASE) --sample 10

# Speed and memory at 1k, 10k and 100k obligations, on SQLite and a throwaway PostgreSQL:
# query counts, median and p95, peak memory, and each endpoint's ratio to its floor (its
# SQL replayed raw plus a trivial view). Prints the machine first; results in
# var/bench/results.json and a table on stdout (`python -m tests.bench --markdown
# var/bench/results.json` prints it again, for the README). Generated data is cached in
# var/bench/cache/ until the migrations or tests/bulk.py change. Narrow it with BENCH_ARGS, e.g.
#   make bench BENCH_ARGS="--sizes 1000,10000 --only api,dashboard --databases sqlite"
# A million obligations (PostgreSQL; generated by COPY, 15 minutes on a busy 2-core machine):
#   make bench BENCH_ARGS="--sizes 1000000 --databases postgres"
BENCH_ARGS ?=
bench: install system-test-deps
	$(BIN)/python -m tests.servers postgres -- $(BIN)/python -m tests.bench $(BENCH_ARGS)

# Many people at once (tests/load/, issue 30): the bench's register of 100,000 obligations on a
# throwaway PostgreSQL and Redis, the tracker run as production runs it (gunicorn, a Celery
# worker, beat), and Locust's compliance staff, managers and auditors at 10, 25 and 50 users,
# each measured for 60 s after its ramp (about 5 minutes with the data cached). Prints the
# machine and a table; results in var/load/results.json. Not part of `make test`. E.g.
#   make load LOAD_ARGS="--users 25 --duration 30 --size 10000 --web-workers 4"
LOAD_ARGS ?=
load: install system-test-deps
	$(BIN)/python -m tests.servers postgres redis -- $(BIN)/python -m tests.load.run $(LOAD_ARGS)

# Mutation testing of the law modules (tests/mutation/, issue 31): each module's mutants run
# against its own tests (tests/mutation/modules.toml); fails below 95% killed or on a
# survivor not listed with its reason in tests/mutation/equivalent.toml. Results in
# var/mutation/. Choose modules or a mode with MUTATION_ARGS, e.g.
#   make mutation MUTATION_ARGS="penalties rules"
#   make mutation MUTATION_ARGS="--changed-since main --sample 10"
MUTATION_ARGS ?=
# `make test` runs the modules changed since MUTATION_BASE in full (all of them: 9 minutes on
# the busy 2-core machine) and 10 fixed mutants of each other module (all sampled: 1.5 minutes);
# where git cannot find MUTATION_BASE, only the samples.
MUTATION_BASE ?= main
mutation: install
	$(BIN)/python -m tests.mutation $(MUTATION_ARGS)
