# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	# Bytecode compiled once, as an installed package has it (an editable install
	# otherwise compiles on every start where bytecode writing is turned off).
	$(BIN)/python -m compileall -q custody species_ref labels
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf demo
	$(BIN)/custody demo --out demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check custody species_ref labels tests bench
	$(BIN)/ruff format --check custody species_ref labels tests bench
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/python -m custody.cli.docgen > docs/cli.md

clean:
	rm -rf $(VENV) demo build dist *.egg-info
