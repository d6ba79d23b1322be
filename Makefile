# cmxl: every target sets itself up (make setup) first, so each works on a fresh machine.
# These machines have no conda: setup builds .venv with pip. With conda: `conda env create -f environment.yml`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch/torchvision pinned to the builds these machines carry; override with `make setup TORCH=...`
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup test quick clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache

quick: setup
	$(PY) -m cmxl train --config CM-XL --set epochs=2 dim=32 train_subset=2000 --data synthetic --out results/quick --name CM-XL --resume
