# The two commands of the README: `make run` and `make test`.
# Each creates or refreshes the virtualenv in .venv first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
FLASK := $(VENV)/bin/flask --app idp
IDP_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

# argon2id (t=2, m=19 MiB) from PyPI's portable wheel takes 23 ms a hash here;
# built for the CPU it runs on (AVX2/AVX-512 paths of the vendored code) 9 ms,
# so a node verifies 2.4x as many logins (BENCHMARKS.md). Same algorithm, same
# hashes. If the build fails the portable wheel stays.
ARGON2_FOR_THIS_CPU = CFLAGS="-O3 -march=native" $(VENV)/bin/python -m pip install --quiet --force-reinstall --no-cache-dir \
	--no-deps --no-binary=argon2-cffi-bindings argon2-cffi-bindings || echo "kept the portable argon2 build"

.PHONY: run test test-sqlite test-postgresql

# Refreshed when the Python or the Node dependencies change.
$(STAMP): pyproject.toml tests/rp_node/package-lock.json
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	$(ARGON2_FOR_THIS_CPU)
	# The RP libraries of tests/browser/test_dpop_rp.py and test_par_rp.py (openid-client, Node.js) and of
	# test_spa_rp.py (oidc-client-ts's browser bundle, served to Chromium); those tests skip without Node.
	! command -v npm >/dev/null || (cd tests/rp_node && npm ci --silent --no-audit --no-fund) || echo "tests/rp_node: npm ci failed"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python scripts/run_demo.py

test: test-sqlite test-postgresql

test-sqlite: $(STAMP)
	$(VENV)/bin/pytest

test-postgresql: $(STAMP)
	IDP_TEST_DATABASE_URL=$(IDP_TEST_DATABASE_URL) $(VENV)/bin/pytest
