# Two entry points that set everything up on a fresh machine:
#   make demo   runs the main job on the embedded default data
#   make test   runs the test suite (what .ci/run calls)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test validate clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,data]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m refconf.cli demo --out reports/demo

test: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest

validate: $(STAMP)
	$(BIN)/python validation/logdet_scaling.py
	$(BIN)/python validation/conformance_example.py --quiet
	$(BIN)/python validation/padding_caveat.py
	$(BIN)/python validation/spectrum_parameterisation.py

clean:
	rm -rf $(VENV) reports .pytest_cache .hypothesis
