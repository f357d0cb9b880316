# Two entry points that set everything up on a fresh machine:
#   make demo   runs the main job on the embedded default data
#   make test   runs the test suite (what .ci/run calls)
#   make docs   builds the documentation strictly (warnings are errors)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs validate clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,data,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m refconf.cli demo --out reports/demo

test: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

validate: $(STAMP)
	$(BIN)/python validation/logdet_scaling.py
	$(BIN)/python validation/conformance_example.py --quiet
	$(BIN)/python validation/float32_budget.py
	$(BIN)/python validation/padding_caveat.py
	$(BIN)/python validation/spectrum_parameterisation.py

clean:
	rm -rf $(VENV) reports .pytest_cache .hypothesis
