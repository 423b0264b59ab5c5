# Este político no existe — the two entry points are `make run` and `make test`.
#
# `make install` creates .venv and installs the project with everything it needs. torch is
# pinned (TORCH_SPEC) because an unpinned requirement pulls a multi-GB CUDA build; override it
# (e.g. TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>") on a GPU machine.

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INSTALL_LOG := $(VENV)/install.log
# pip's progress, notices and build output go to $(INSTALL_LOG); the terminal gets two lines.
PIP := PIP_ROOT_USER_ACTION=ignore $(BIN)/python -m pip --disable-pip-version-check --no-input
CONFIG ?= config.toml

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing torch and the project into $(VENV) (first run only, a few minutes; details in $(INSTALL_LOG))..." >&2
	@{ $(PIP) install --upgrade pip && $(PIP) install $(TORCH_SPEC) && $(PIP) install -e '.[train,dev]'; } \
		>$(INSTALL_LOG) 2>&1 || { tail -n 20 $(INSTALL_LOG) >&2; echo "Install failed: see $(INSTALL_LOG)" >&2; exit 1; }
	@echo "Installed." >&2
	@touch $@

install: $(STAMP)

run: $(STAMP)
	@$(BIN)/politico chat --config $(CONFIG)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/politico bench --out docs/bench-engine.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
