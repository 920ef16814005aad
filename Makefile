# glaviz — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.glaviz-installed

# Use the read-only sample-data mirror beside the checkout when it exists (unless already set).
ifeq ($(origin GLAVIZ_DATA_MIRROR), undefined)
ifneq ($(wildcard ../shared/data/README.md),)
export GLAVIZ_DATA_MIRROR := $(abspath ../shared/data)
endif
endif
# Keep the pooch cache inside the checkout unless the user chose one.
export GLAVIZ_CACHE ?= $(abspath .cache/glaviz)

.PHONY: help setup demo test lint format lab clean

help:
	@echo "make demo   set up .venv and run the demo on the embedded Everest sample"
	@echo "make test   set up .venv, lint (ruff) and run the whole test suite"
	@echo "make lab    set up .venv and open JupyterLab on notebooks/"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned, so that pip never resolves a multi-GB CUDA build on its own.
$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check glaviz tests benchmarks
	$(VENV)/bin/ruff format --check glaviz tests benchmarks

format: setup
	$(VENV)/bin/ruff check --fix glaviz tests benchmarks
	$(VENV)/bin/ruff format glaviz tests benchmarks

test: setup lint
	$(PY) -m pytest -q

demo: setup
	$(PY) -m glaviz.demo

lab: setup
	$(PIP) install --quiet "jupyterlab>=4.0"
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf .cache build *.egg-info .pytest_cache
