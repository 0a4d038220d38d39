# cmrpipe: the two front-door commands and their helpers.
#   make book    set up .venv, run every chapter with params/default.yaml, build the HTML book
#   make test    set up .venv, run the tests
#   make bench   set up .venv, run the benchmarks (results in bench/results.json)
#   make clean   remove .venv, runs/, the executed chapters and the built book
#   make lock    re-pin requirements/*.lock from requirements/*.in
# The set-up needs only Python 3.11 and pip. It makes .venv afresh from the lock files,
# and is skipped while the lock files and pyproject.toml are unchanged.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PARAMS ?= params/default.yaml
LOCKS := requirements/base.lock requirements/tf-cpu.lock
SETUP_HASH := $(shell cat $(LOCKS) pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(SETUP_HASH)

export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup book test bench clean lock

setup: $(STAMP)

# The stamp's name holds the hash of the locks and pyproject.toml, so it has no file
# prerequisites: touching a file, or switching branches to identical content, rebuilds nothing.
$(STAMP):
	@test -n "$(PYTHON)" || { echo "no python3.11 or python3 on PATH; install Python 3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "the lock files are for Python 3.11; $(PYTHON) is $$($(PYTHON) --version 2>&1)."; \
	  echo "Run with PYTHON=/path/to/python3.11, e.g. make test PYTHON=python3.11"; exit 1; }
	@echo "== setting up $(VENV) with $(PYTHON) (log: $(VENV)/install.log)"
	@rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) || { \
	  echo "could not create $(VENV); on Debian/Ubuntu install the python3.11-venv package"; exit 1; }
	@( $(BIN)/python -m pip install -r requirements/base.lock -r requirements/tf-cpu.lock \
	   && $(BIN)/python -m pip install --no-deps -e . \
	   && $(BIN)/python -m ipykernel install --sys-prefix --name cmrpipe --display-name "Python (cmrpipe)" \
	 ) > $(VENV)/install.log 2>&1 || { tail -n 40 $(VENV)/install.log; echo "set-up failed; see $(VENV)/install.log"; exit 1; }
	@touch $@
	@echo "== $(VENV) ready"

book: setup
	$(BIN)/cmrpipe run --params $(PARAMS)
	$(BIN)/cmrpipe book

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m cmrpipe.bench --out bench/results.json

clean:
	rm -rf $(VENV) runs bench book/_build book/*.ipynb .pytest_cache lib/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

lock:
	PYTHON=$(PYTHON) bash requirements/lock.sh
