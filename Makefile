# `make test` and `make demo` set up everything on a new machine; later runs reuse what is current.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv is rebuilt when its inputs change: the stamp's name is a hash of them.
DEPS_HASH := $(shell cat pyproject.toml constraints.txt tests/plugins/*/pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(DEPS_HASH)

.PHONY: help venv system-deps lint typecheck unit test demo bench clean

help:
	@echo "make test    set up (venv, system packages) and run ruff, mypy and the whole test suite"
	@echo "make demo    set up and run the demo on embedded defaults"
	@echo "make lint | typecheck | unit    one step of make test"
	@echo "make clean   remove the venv and caches"

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'
	@rm -f $(VENV)/.deps-*
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $@

venv: $(STAMP)

system-deps:
	@scripts/ensure-postgres.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv system-deps
	$(BIN)/pytest

test: lint typecheck unit

demo: venv
	$(BIN)/finp2p demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
