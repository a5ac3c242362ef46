"""What the machine offers: CPU cores within this process's affinity, no GPU figures on a CPU."""

import os

import pytest

from umnist import hardware
from umnist.errors import UmnistError


def test_cpu_cores_follow_the_affinity(monkeypatch):
    monkeypatch.delenv("UMNIST_CPUS", raising=False)
    cores = hardware.cpu_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_no_gpu_figures_off_cuda(device):
    assert hardware.gpu_memory_bytes(device) is None and hardware.peak_gpu_memory_gb(device) is None


def test_cpu_cores_capped_by_the_step_request(monkeypatch):
    """A pod's affinity is its node's cores: the pipeline sets the request in UMNIST_CPUS."""
    monkeypatch.setenv("UMNIST_CPUS", "1")
    assert hardware.cpu_cores() == 1
    monkeypatch.setenv("UMNIST_CPUS", "100000")
    assert hardware.cpu_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("UMNIST_CPUS", "many")
    with pytest.raises(UmnistError, match="UMNIST_CPUS"):
        hardware.cpu_cores()


def test_a_step_that_asked_for_a_gpu_fails_without_one(monkeypatch):
    """No silent CPU fallback (e.g. a torch CUDA build newer than the node's driver)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("UMNIST_REQUIRE_GPU", raising=False)
    hardware.check_gpu()  # no GPU asked for: runs on the CPU
    monkeypatch.setenv("UMNIST_REQUIRE_GPU", "1")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    with pytest.raises(UmnistError, match="requested a GPU.*driver must support CUDA 12.8"):
        hardware.check_gpu()
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(UmnistError, match="CPU build"):
        hardware.check_gpu()


def test_torch_device_auto_falls_back_to_the_cpu_but_cuda_does_not(monkeypatch):
    """One device rule for the detector and the classifier: 'auto' runs where it can, 'cuda' asked for fails."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.torch_device("auto") == torch.device("cpu")
    assert hardware.torch_device("cpu") == torch.device("cpu")
    with pytest.raises(UmnistError, match="device='cuda:1': no CUDA GPU"):
        hardware.torch_device("cuda:1")
