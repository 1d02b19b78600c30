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
	$(MAKE) report
	@echo "Done: open results/*/site/index.html (the web page) or report/report.html (the Snakemake report)."

# The report holds the web page as a folder, so Snakemake writes it as a zip; unpacked into report/.
report: $(VENV)/.installed
	$(BIN)/snakemake --report report.zip
	rm -rf report
	$(BIN)/python -m zipfile -e report.zip .

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
	rm -rf results logs benchmarks .snakemake report.html report.zip report
