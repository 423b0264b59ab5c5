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
CONFIG ?= config.toml

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (first run only; a few minutes)..." >&2
	@$(BIN)/python -m pip install -q --upgrade pip >&2
	@$(BIN)/python -m pip install -q $(TORCH_SPEC) >&2
	@$(BIN)/python -m pip install -q -e '.[train,dev]' >&2
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
