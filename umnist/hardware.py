"""What the machine offers the trainers: CPU cores, GPU memory, and the GPU memory a run used.

Each function is a plain query with a CPU answer (None where there is no GPU), so the code that chooses
workers and batch sizes from them can be tested on any machine.
"""

import os


def cpu_cores() -> int:
    """Cores this process may run on: the CPU affinity (a container's share), not the host's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


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
