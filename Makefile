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

.PHONY: help setup browser demo test lint format lab clean

help:
	@echo "make demo   set up .venv and run the demo on the embedded Everest sample"
	@echo "make test   set up .venv, lint (ruff, mypy) and run the whole test suite"
	@echo "make lab    set up .venv and open JupyterLab on notebooks/"
	@echo "make browser provide Chromium for the browser tests (tests/viz); part of make test"

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
	$(VENV)/bin/mypy glaviz

format: setup
	$(VENV)/bin/ruff check --fix glaviz tests benchmarks
	$(VENV)/bin/ruff format glaviz tests benchmarks

# Chromium for the browser tests (tests/viz): $GLAVIZ_CHROMIUM, else Debian's /usr/bin/chromium,
# else apt-get (as root on Debian/Ubuntu), else Playwright's own download. Never fatal here: with
# no browser the browser tests fail and say how to get one (they are never skipped).
browser: setup
	@if [ -n "$$GLAVIZ_CHROMIUM" ]; then \
	  if [ -x "$$GLAVIZ_CHROMIUM" ]; then echo "browser: $$GLAVIZ_CHROMIUM (GLAVIZ_CHROMIUM)"; \
	  else echo "browser: GLAVIZ_CHROMIUM=$$GLAVIZ_CHROMIUM is not an executable; fix or unset it"; fi; \
	elif [ -x /usr/bin/chromium ]; then \
	  echo "browser: /usr/bin/chromium"; \
	else \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "browser: apt-get install chromium (log: .cache/apt-chromium.log)"; \
	    mkdir -p .cache; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends chromium; } >.cache/apt-chromium.log 2>&1 \
	      || { tail -n 5 .cache/apt-chromium.log; echo "browser: apt-get failed"; }; \
	  fi; \
	  if [ -x /usr/bin/chromium ]; then echo "browser: /usr/bin/chromium"; \
	  elif $(PY) -m playwright install chromium; then echo "browser: Playwright's Chromium"; \
	  else \
	    echo "browser: no Chromium. Install one (as root: apt-get install chromium;"; \
	    echo "  or: $(PY) -m playwright install chromium) or point GLAVIZ_CHROMIUM at one."; \
	    echo "  The browser tests in tests/viz fail until then."; \
	  fi; \
	fi

test: setup lint browser
	$(PY) -m pytest -q

# The demo: train a small GlaViTU on Everest for a few minutes, map the scene, write
# demo_output/report.html (offline). DEMO_ARGS=--overwrite replaces an earlier one.
demo: setup
	$(PY) -m glaviz.demo $(DEMO_ARGS)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf .cache build *.egg-info .pytest_cache
