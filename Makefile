# The two commands of the README: `make run` and `make test`.
# Each creates or refreshes the virtualenv in .venv first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
FLASK := $(VENV)/bin/flask --app idp
IDP_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgresql

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python scripts/run_demo.py

test: test-sqlite test-postgresql

test-sqlite: $(STAMP)
	$(VENV)/bin/pytest

test-postgresql: $(STAMP)
	IDP_TEST_DATABASE_URL=$(IDP_TEST_DATABASE_URL) $(VENV)/bin/pytest
