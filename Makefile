# umnist: `make help` lists every target.
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
# The headless OpenCV build must be installed last: yolov5 pulls in the GUI build (opencv-python), both
# unpack into the same cv2/ folder, and the last one installed wins. Keep this in step with pyproject.toml.
OPENCV_HEADLESS := opencv-python-headless==5.0.0.93
PROFILE ?= tiny
# Cluster trial (see README "Cluster"): image names, the kind cluster, the standalone KFP release.
# DEVICE=cpu (a kind trial): no GPU requests, small ones, and every step in the CPU image.
DEVICE ?= gpu
IMAGE_TAG ?= dev
CPU_IMAGE ?= umnist-cpu:$(IMAGE_TAG)
ifeq ($(DEVICE),cpu)
CUDA_IMAGE ?= $(CPU_IMAGE)
else
CUDA_IMAGE ?= umnist-cuda:$(IMAGE_TAG)
endif
KIND_CLUSTER ?= umnist
# The newest release the pipeline was checked against (2.14.x, 2.15.x and 2.16.x are supported; the
# compiled pipeline's store endpoint follows this, see README "Cluster").
PIPELINE_VERSION ?= 2.16.1

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

test-fast: ## the tests not marked slow (no kill/resume, end-to-end or long training runs)
	$(PY) -m pytest -m "not slow"

synth: ## generate a synthetic data set: make synth PROFILE=tiny OUT=data/synth MNIST=../shared/data/mnist
	$(PY) -m umnist synth --profile $(PROFILE) --out $(or $(OUT),data/synth) --mnist $(or $(MNIST),../shared/data/mnist)

bench-synth: ## scenes per second of the synth stage at 2560 and 256, 1 and 2 workers
	$(PY) bench/synth_speed.py

lint: ## ruff over the package (pipeline and components included), tests and scripts
	$(VENV)/bin/ruff check umnist tests bench pipeline.py

PIPELINE_YAML ?= umnist-pipeline.yaml
PARTS ?= 4
compile: ## write the KFP pipeline YAML: make compile [PROFILE=full] [DEVICE=cpu] [PIPELINE_VERSION=2.14.4] [PARTS=4] [CPU_IMAGE=..]
	UMNIST_CPU_IMAGE=$(CPU_IMAGE) UMNIST_CUDA_IMAGE=$(CUDA_IMAGE) $(PY) pipeline.py --out $(PIPELINE_YAML) \
		--profile $(PROFILE) --parts $(PARTS) --device $(DEVICE) --kfp-version $(PIPELINE_VERSION) $(COMPILE_FLAGS)

DEMO_PROFILE ?= demo
demo: ## the whole pipeline locally (KFP local runner), trained and scored in ~10 min: make demo [OUT=runs/demo]
	$(PY) -m umnist run --profile $(DEMO_PROFILE) --out $(or $(OUT),runs/demo) --mnist $(or $(MNIST),../shared/data/mnist)

lease: ## what travels to a borrowed GPU (README "GPU budget"): make lease [MNIST=../shared/data/mnist]
	bench/gpu_lease_prepare.sh $(or $(MNIST),../shared/data/mnist)
.PHONY: lease

images: ## build the CPU image, and the CUDA one unless DEVICE=cpu, with docker (from images/)
	docker build -f images/Dockerfile.cpu -t $(CPU_IMAGE) .
	$(if $(filter cpu,$(DEVICE)),,docker build -f images/Dockerfile.cuda -t $(CUDA_IMAGE) .)

kind-up: ## create the kind cluster and install standalone Kubeflow Pipelines with our launcher config
	kind create cluster --name $(KIND_CLUSTER) --config manifests/kind-cluster.yaml
	kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$(PIPELINE_VERSION)"
	kubectl wait --for condition=established --timeout=60s crd/applications.app.k8s.io
	kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$(PIPELINE_VERSION)"
	kubectl apply -f manifests/kfp-launcher-configmap.yaml
	kubectl wait --for condition=available --timeout=600s deployment --all -n kubeflow

kind-load: ## copy the built images into the kind cluster's nodes (no registry needed)
	kind load docker-image $(sort $(CPU_IMAGE) $(CUDA_IMAGE)) --name $(KIND_CLUSTER)

.PHONY: help install test test-fast lint synth bench-synth compile demo images kind-up kind-load
