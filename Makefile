# `make demo` runs the main job end to end; `make test` runs the test suite.
# Both first create .venv and install what is missing (CPU torch, pinned so pip pulls no CUDA, then
# hf_nat with every extra: train, align, plot, export, and the test tools).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
MINUTES ?= 7
BIN = $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup test test-learning lint demo

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

test: setup
	$(BIN)/python -m pytest -q

# The toy-learning tests alone under other CPU kernels than the machine's (default, avx2, avx512).
LEARNING_CPU_CAPABILITY ?= default
test-learning: setup
	ATEN_CPU_CAPABILITY=$(LEARNING_CPU_CAPABILITY) $(BIN)/python -m pytest -q -m learning

# One linter/formatter configuration for the whole tree (pyproject.toml [tool.ruff]).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: setup
	$(BIN)/hf-nat demo --minutes $(MINUTES)
