"""The images the components run in. Set at compile time (`make compile CPU_IMAGE=... CUDA_IMAGE=...`):
the tags you pushed (or `kind load`ed) from images/Dockerfile.cpu and images/Dockerfile.cuda."""

import os

CPU_IMAGE = os.environ.get("UMNIST_CPU_IMAGE", "umnist-cpu:dev")
CUDA_IMAGE = os.environ.get("UMNIST_CUDA_IMAGE", "umnist-cuda:dev")
