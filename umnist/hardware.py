"""What the machine offers the stages: CPU cores, the torch device a setting names, GPU memory, and the GPU
memory a run used.

Each function is a plain query with a CPU answer (None where there is no GPU), so the code that chooses
workers and batch sizes from them can be tested on any machine.
"""

import os

from umnist.errors import UmnistError

# Set by pipeline.py on a step: the CPUs it requested (a pod's affinity is the whole node's cores).
CPUS_ENV = "UMNIST_CPUS"
# Set by pipeline.py on a step that requested a GPU: check_gpu fails instead of running on the CPU.
REQUIRE_GPU_ENV = "UMNIST_REQUIRE_GPU"


def cpu_cores() -> int:
    """Cores this process may use: the CPU affinity, capped by $UMNIST_CPUS when set (a Kubernetes pod sees
    every core of its node, while it was scheduled for its CPU request)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    requested = os.environ.get(CPUS_ENV, "")
    try:
        cap = int(float(requested)) if requested else cores
    except ValueError:
        raise UmnistError(f"{CPUS_ENV}={requested!r}: expected a number of CPUs") from None
    return max(min(cores, cap), 1)


def check_gpu() -> None:
    """Fail in one line when this step asked for a GPU ($UMNIST_REQUIRE_GPU=1) and torch sees none, rather
    than train for hours on the CPU while holding the GPU."""
    if os.environ.get(REQUIRE_GPU_ENV) != "1":
        return
    import torch

    if torch.cuda.is_available():
        return
    if torch.version.cuda is None:
        raise UmnistError(f"this step requested a GPU but torch {torch.__version__} is a CPU build: "
                          "run it in the CUDA image (images/Dockerfile.cuda)")
    raise UmnistError(f"this step requested a GPU but torch {torch.__version__} (CUDA {torch.version.cuda}) sees "
                      f"none: the node's NVIDIA driver must support CUDA {torch.version.cuda} (README \"CUDA image\")")


def torch_device(device: str = "auto"):
    """The torch device a setting names: 'auto' = the GPU when there is one, else the CPU; a CUDA device asked
    for where torch sees no GPU is an error, not a silent run on the CPU."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UmnistError(f"device={device!r}: no CUDA GPU available here")
    return torch.device(device)


def gpu_memory_bytes(device) -> int | None:
    """Total memory of a CUDA device, None for any other device."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory


def peak_gpu_memory_gb(device) -> float | None:
    """Most memory torch allocated on a CUDA device in this process so far (GB), None for any other device."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 1e9, 3)
