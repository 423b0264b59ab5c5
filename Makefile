# Este político no existe — the two entry points are `make run` and `make test`.
#
# `make install` creates .venv and installs the project with everything it needs. torch is
# pinned (TORCH_SPEC) because an unpinned requirement pulls a multi-GB CUDA build; override it
# (e.g. TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>") on a GPU machine.
#
# `make gpu-check` is the one prepared check of the CUDA path (docs/benchmarks.md "On a GPU").
# On a machine with an NVIDIA driver (nvidia-smi) it makes .venv-gpu, which sees the system's
# packages (a CUDA torch already installed there is used as is), installs GPU_TORCH_SPEC when
# its torch sees no GPU (pip's default index serves the CUDA build of torch for Linux x86-64;
# set GPU_TORCH_SPEC, or PIP_INDEX_URL, for another), then runs `politico gpu-check`. Elsewhere
# it runs the check with .venv, which says in one line that there is no GPU, and downloads
# nothing.

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INSTALL_LOG := $(VENV)/install.log
# pip's progress, notices and build output go to $(INSTALL_LOG); the terminal gets two lines.
PIP := PIP_ROOT_USER_ACTION=ignore $(BIN)/python -m pip --disable-pip-version-check --no-input
CONFIG ?= config.toml
GPU_TORCH_SPEC ?= torch==2.13.0
GPU_VENV := .venv-gpu
GPU_STAMP := $(GPU_VENV)/.installed
GPU_PIP := PIP_ROOT_USER_ACTION=ignore $(GPU_VENV)/bin/python -m pip --disable-pip-version-check --no-input
GPU_CHECK_DIR ?= gpu-check
SEES_GPU := -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'
MUTATION_STAMP := $(VENV)/.mutation-installed
# Workers for `make mutation` (one per core of the 2-core machine it was sized on).
MUTATION_CHILDREN ?= 2

.PHONY: install run test lint bench gpu-check mutation clean

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

# `make mutation` is the mutation check of docs/testing.md ("Mutation check"): mutmut mutates the
# five files named in pyproject.toml's [tool.mutmut], runs the tests that reach each mutant and
# prints what survived. It takes about 1 h 15 min on two cores, so it is run by hand, never in CI;
# each run starts from a fresh mutants/ (mutmut's working copy and cache).
$(MUTATION_STAMP): $(STAMP)
	@{ $(PIP) install -e '.[mutation]'; } >>$(INSTALL_LOG) 2>&1 \
		|| { tail -n 20 $(INSTALL_LOG) >&2; echo "Install failed: see $(INSTALL_LOG)" >&2; exit 1; }
	@touch $@

mutation: $(MUTATION_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTATION_CHILDREN)
	$(BIN)/mutmut results

$(GPU_STAMP): pyproject.toml
	@test -x $(GPU_VENV)/bin/python || $(PYTHON) -m venv --system-site-packages $(GPU_VENV)
	@echo "Installing the CUDA build of torch (unless one is there) and the project into $(GPU_VENV) (details in $(GPU_VENV)/install.log)..." >&2
	@{ $(GPU_PIP) install --upgrade pip && { $(GPU_VENV)/bin/python $(SEES_GPU) || $(GPU_PIP) install $(GPU_TORCH_SPEC); } \
		&& $(GPU_PIP) install -e '.[dev]'; } >$(GPU_VENV)/install.log 2>&1 \
		|| { tail -n 20 $(GPU_VENV)/install.log >&2; echo "Install failed: see $(GPU_VENV)/install.log" >&2; exit 1; }
	@$(GPU_VENV)/bin/python $(SEES_GPU) || echo "torch in $(GPU_VENV) sees no GPU: the check will say so" >&2
	@touch $@

gpu-check:
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		$(MAKE) -s --no-print-directory $(GPU_STAMP) && $(GPU_VENV)/bin/politico gpu-check --out-dir $(GPU_CHECK_DIR); \
	else \
		$(MAKE) -s --no-print-directory $(STAMP) && $(BIN)/politico gpu-check --out-dir $(GPU_CHECK_DIR); \
	fi

clean:
	rm -rf $(VENV) $(GPU_VENV) .pytest_cache .ruff_cache
