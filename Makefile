# rosenblatt: `make demo` runs the main job, `make test` the tests. Both set up what they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ROSENBLATT_CACHE ?= $(HOME)/.cache/rosenblatt
PLAYBOOKS := $(wildcard playbooks/*.yml)

.PHONY: setup lint test test-python test-userspace test-slow demo clean

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

setup:
	tools/setup-host
	$(MAKE) --no-print-directory $(VENV)/.installed

lint: setup
	ruff check .
	yamllint --strict .
	ansible-lint --profile production
	for playbook in $(PLAYBOOKS); do ansible-playbook --syntax-check "$$playbook" >/dev/null || exit 1; done
	@echo "syntax check: $(words $(PLAYBOOKS)) playbooks ok"

test-python: setup
	pytest -m "not slow"

test-userspace: setup
	@if [ -x userspace/run-tests ]; then userspace/run-tests; else echo "userspace: no tests yet"; fi

test: lint test-userspace test-python

test-slow: setup
	pytest -m slow

demo: setup
	tools/demo

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
