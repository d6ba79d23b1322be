# cmxl: every target sets itself up (make setup) first, so each works on a fresh machine.
# These machines have no conda: setup builds .venv with pip. With conda: `conda env create -f environment.yml`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch/torchvision pinned to the builds these machines carry; override with `make setup TORCH="torch torchvision"`
TORCH  ?= torch==2.14.1 torchvision==0.29.1
CMXL   := $(PY) -m cmxl

.PHONY: setup test quick reproduce lab bench clean

setup: $(VENV)/.installed

# the Jupyter kernel `cmxl` (inside .venv, so it always runs this environment) is what papermill and `make lab` use
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name cmxl --display-name "Python (cmxl)"
	touch $@

test: setup
	$(PY) -m pytest -q

# the whole path at CPU scale: quick ablation on synthetic data -> Table 1 -> Figures 3-6
quick: setup
	$(CMXL) ablate --profile quick
	$(CMXL) table --profile quick
	$(CMXL) figures --profile quick

# the paper's protocol: 7 presets x 100 epochs on CIFAR-10 (a GPU is needed for sensible times)
reproduce: setup
	$(CMXL) ablate --profile paper
	$(CMXL) table --profile paper
	$(CMXL) figures --profile paper

# side-by-side throughput of the paper's pipeline and cmxl's fast path (a few minutes on 2 CPU cores)
bench: setup
	$(PY) bench/throughput.py

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache
