# dqmflow: the two commands of the README.
#   make demo   installs into .venv and runs the whole workflow on the embedded demo data
#   make test   installs the test extras into .venv and runs ruff, mypy, snakemake --lint and the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SNAKEMAKE_ARGS ?=

.PHONY: demo report test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[ml,xrootd]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[ml,xrootd,test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/snakemake $(SNAKEMAKE_ARGS)
	$(BIN)/snakemake --report report.html
	@echo "Done: results are in results/, open report.html in a browser."

report: $(VENV)/.installed
	$(BIN)/snakemake --report report.html

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src workflow/scripts tests bench
	$(BIN)/ruff format --check src workflow/scripts tests bench
	$(BIN)/mypy src
	$(BIN)/snakemake --lint

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf results logs benchmarks .snakemake report.html
