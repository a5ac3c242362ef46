"""What the machine offers: CPU cores within this process's affinity, no GPU figures on a CPU."""

import os

import pytest

from umnist import hardware


def test_cpu_cores_follow_the_affinity():
    cores = hardware.cpu_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_no_gpu_figures_off_cuda(device):
    assert hardware.gpu_memory_bytes(device) is None and hardware.peak_gpu_memory_gb(device) is None
