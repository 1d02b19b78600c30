# dqmflow: the two commands of the README.
#   make demo   installs into .venv and runs the whole workflow on the embedded demo data
#   make test   installs the test extras into .venv and runs ruff, mypy, snakemake --lint and the tests
#   make lxplus-profile  installs the HTCondor executor into .venv and links profiles/lxplus(-gpu) to
#                ~/.config/snakemake/, so that `snakemake --profile lxplus` works (README: Running on lxplus)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SNAKEMAKE_ARGS ?=

.PHONY: demo report test lint bench clean lxplus-profile vendor-js

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[ml,xrootd]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[ml,xrootd,lxplus,test]'
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

$(VENV)/.installed-lxplus: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[ml,xrootd,lxplus]'
	touch $@

# `snakemake --profile NAME` looks in ./NAME and ~/.config/snakemake/NAME, not in profiles/.
lxplus-profile: $(VENV)/.installed-lxplus
	mkdir -p $(HOME)/.config/snakemake
	ln -sfn $(CURDIR)/profiles/lxplus $(HOME)/.config/snakemake/lxplus
	ln -sfn $(CURDIR)/profiles/lxplus-gpu $(HOME)/.config/snakemake/lxplus-gpu
	@echo "Installed: run 'snakemake --profile lxplus' (GPUs: --profile lxplus --profile lxplus-gpu) from $(CURDIR)."

# The JavaScript the web page ships (src/dqmflow/site_assets/, committed): refresh from npm.
VEGA := vega@6.4.0 vega-lite@6.4.3 vega-embed@7.3.0
vendor-js:
	rm -rf .vendor-js && mkdir -p .vendor-js
	cd .vendor-js && npm pack --silent $(VEGA) && for f in *.tgz; do tar xzf $$f; mv package $${f%.tgz}; done
	cp .vendor-js/vega-[0-9]*/build/vega.min.js .vendor-js/vega-lite-*/build/vega-lite.min.js \
	   .vendor-js/vega-embed-*/build/vega-embed.min.js src/dqmflow/site_assets/
	rm -rf .vendor-js

bench: $(VENV)/.installed
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf results logs benchmarks .snakemake report.html report.zip report
