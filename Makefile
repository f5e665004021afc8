# Lhama: `make run` sets everything up and starts the site on the embedded defaults;
# `make test` sets up the same way and runs ruff and the whole test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help run test setup python-check frontend migrate demo browser lint bench bench-quick lock clean

help:
	@echo "make run    set up everything and start Lhama on http://$(HOST):$(PORT)/"
	@echo "make test   set up and run ruff and the whole test suite"
	@echo "make bench  run the benchmarks in bench/ (results in bench/results/)"
	@echo "make bench-quick  the relay benchmark at 1, 10, 50 chats (under 2 minutes; what CI runs)"

python-check:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null || { \
	  echo "Lhama needs Python 3.12 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
	  echo "Install it (pyenv install 3.12, or your OS package python3.12) and run again,"; \
	  echo "or point make at one: make run PYTHON=python3.12"; exit 1; }

# The virtualenv is rebuilt only when the declared dependencies change. The first
# install compiles llama.cpp (about 10 minutes on 2 cores); pip's wheel cache keeps it.
$(VENV)/.installed: pyproject.toml constraints.txt | python-check
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed frontend

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

static/dist/.built: node_modules/.installed static/build.mjs $(wildcard static/src/*.js static/src/*/*.js)
	npm run --silent build
	@touch $@

frontend: static/dist/.built

migrate: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

demo: migrate
	$(PY) manage.py demo_data

# Debian's chromium for the browser tests (Playwright never downloads its own here), and
# Debian's nginx for the test of the stack's front (nginx -t, two Daphne processes behind it).
browser:
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium fonts-dejavu-core; }
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { apt-get update -q && apt-get install -y -q nginx-light; }

run: demo
	@echo
	@echo "  Lhama is starting on http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/)"
	@echo "  It prints 'Lhama is ready' once the model server is warmed up. Ctrl-C stops everything."
	@echo
	LHAMA_HOST=$(HOST) LHAMA_PORT=$(PORT) $(VENV)/bin/honcho -f platform/Procfile.embedded -d . start

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

test: setup browser lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench $(BENCH_ARGS)

# Fails only when an answer failed or a token was lost, duplicated or reordered.
bench-quick: setup
	$(PY) -m bench.relay --quick $(BENCH_ARGS)

# Regenerate the constraints file from the current virtualenv (after changing pyproject.toml).
lock:
	$(PIP) freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) node_modules static/dist var
