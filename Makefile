# Only python3 is assumed on the machine: everything else is installed into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest()[:12])")

.PHONY: install demo test test-compat lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/linea db upgrade
	$(BIN)/linea db seed --if-empty
	$(BIN)/linea events list --upcoming --limit 20

test: install
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The suite again on PostgreSQL 15 behind PgBouncer (transaction pooling), as production runs.
# Installs Debian's postgresql-15 and pgbouncer when missing (root needed for that step).
test-compat: install
	bash .ci/compat-servers.sh start > .venv/compat.env
	. ./.venv/compat.env && $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS); status=$$?; \
	  bash .ci/compat-servers.sh stop; exit $$status

lint: install
	$(BIN)/ruff check linea_cli tests migrations benchmarks

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
