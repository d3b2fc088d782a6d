# The two commands of the README: `make run` and `make test`. Both set up from scratch.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install migrate demo lint bench clean lock

# Exactly the versions in requirements.lock, each checked against its hash; then Keyward itself.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Refresh requirements.lock from pyproject.toml (newest versions that fit, with hashes).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --extra dev --strip-extras --allow-unsafe \
		--upgrade -o requirements.lock pyproject.toml

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py demo

# The address the demo prints and e-mail links point to follows HOST and PORT
# (make run PORT=8101), unless KEYWARD_CONSOLE_URL is set.
run: export KEYWARD_CONSOLE_URL ?= http://$(HOST):$(PORT)
run: demo
	@echo "Keyward console: $(KEYWARD_CONSOLE_URL)"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Lint and types first: a change that breaks them fails before the suite runs.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff's rules and formatting, and mypy with django-stubs (configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python -m bench.all

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles test-artifacts
