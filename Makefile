# Two entry points (see README): `make study` runs the whole embedded study, `make test` the tests.
# Both create .venv with Python 3.11 and install the project on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
CORES ?= 2
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: study test test-fast lint bench clean-results

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

study: $(VENV)/.installed
	snakemake --cores $(CORES) --rerun-incomplete

# The whole suite on $(CORES) pytest-xdist workers (tests/conftest.py groups them); test-fast leaves out
# the tests marked slow (the end-to-end studies, jobs in a subprocess, longer trainings).
test: $(VENV)/.installed
	python -m pytest -q -n $(CORES) --dist loadfile

test-fast: $(VENV)/.installed
	python -m pytest -q -m "not slow"

# Lint the code (ruff, snakefmt: settings in pyproject.toml) and the workflow, and dry-run every config
# (config/imagenet.yaml needs ImageNet on disk: the tests dry-run it against a fake tree; digits_extras.yaml
# and mnist_cpu.yaml are overlays of config.yaml and mnist.yaml).
lint: $(VENV)/.installed
	ruff check .
	snakefmt --check Snakefile rules/
	snakemake --lint
	snakemake --lint --configfile config/imagenet_smoke.yaml
	for c in config/*.yaml; do case $$c in config/imagenet.yaml|config/digits_extras.yaml|config/mnist_cpu.yaml) continue;; esac; snakemake -n --quiet --configfile $$c || exit 1; done
	snakemake -n --quiet --configfile config/config.yaml config/digits_extras.yaml
	snakemake -n --quiet --configfile config/mnist.yaml config/mnist_cpu.yaml

bench: $(VENV)/.installed
	python bench/train_step.py
