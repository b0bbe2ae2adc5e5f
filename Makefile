# `make demo` and `make test` each set themselves up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench install clean plain-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.demo

install: $(VENV)/.dev

demo: $(VENV)/.demo
	$(BIN)/omni demo $(if $(SCENARIO),--scenario $(SCENARIO))

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(VENV)/.dev
	./scripts/services.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -n 2 --dist loadfile

bench: $(VENV)/.dev
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.accuracy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

# The image's install (`pip install .`, no extras): the commands that need an optional
# dependency say which extra to install, and the IAM policies need no emulator.
plain-check:
	rm -rf .venv-plain
	$(PYTHON) -m venv .venv-plain
	.venv-plain/bin/pip install --quiet .
	.venv-plain/bin/omni iam-policy --out .venv-plain/iam
	diff -r deploy/iam .venv-plain/iam
	! .venv-plain/bin/omni demo 2> .venv-plain/demo.err
	cat .venv-plain/demo.err
	test "$$(wc -l < .venv-plain/demo.err)" -eq 1 && grep -q "pip install 'omni\[demo\]'" .venv-plain/demo.err
	rm -rf .venv-plain
