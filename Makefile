# Two commands on a fresh machine: `make run` (the main job) and `make test`.
# torch 2.13.0 goes in first, from its CPU build, so pip never pulls a multi-GB CUDA build.
VENV ?= .venv
BIN := $(VENV)/bin

# The report's browser tests drive the system's Chromium (Debian's `chromium`): installed here
# when absent (CI is a fresh Debian machine, as root); Playwright never downloads a browser.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench gallery clean

$(BIN)/swarm: pyproject.toml setup.py swarmcli/engine/_kernel.c swarmcli/engine/kernel_body.h swarmcli/engine/kernel_lanes.h
	python3 -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,cluster,optuna,parquet,tensorboard,mlflow,wandb]"
	touch $@

run: $(BIN)/swarm
	$(BIN)/swarm run +sweep=width_activation

$(CHROMIUM):
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium

test: $(BIN)/swarm $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: $(BIN)/swarm
	$(BIN)/python benchmarks/run.py

gallery: $(BIN)/swarm
	OMP_NUM_THREADS=1 $(BIN)/python docs/make_gallery.py

clean:
	rm -rf $(VENV) build dist *.egg-info
