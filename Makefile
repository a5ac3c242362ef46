# umnist: `make help` lists every target.
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
# The headless OpenCV build must be installed last: yolov5 pulls in the GUI build (opencv-python), both
# unpack into the same cv2/ folder, and the last one installed wins. Keep this in step with pyproject.toml.
OPENCV_HEADLESS := opencv-python-headless==5.0.0.93
PROFILE ?= tiny

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

install: ## create .venv and install umnist with its dev tools (torch first, from the pinned release)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --force-reinstall --no-deps $(OPENCV_HEADLESS)

test: ## run the whole test suite (CPU, tiny sizes)
	$(PY) -m pytest

synth: ## generate a synthetic data set: make synth PROFILE=tiny OUT=data/synth MNIST=../shared/data/mnist
	$(PY) -m umnist synth --profile $(PROFILE) --out $(or $(OUT),data/synth) --mnist $(or $(MNIST),../shared/data/mnist)

bench-synth: ## scenes per second of the synth stage at 2560 and 256, 1 and 2 workers
	$(PY) bench/synth_speed.py

lint: ## ruff over the package, tests, components and scripts
	$(VENV)/bin/ruff check umnist tests bench

.PHONY: help install test lint synth bench-synth
