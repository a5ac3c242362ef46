"""images/: the CUDA image's torch build matches its base's CUDA release, and says which driver it needs."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CUDA = (REPO / "images" / "Dockerfile.cuda").read_text()


def arg(name: str) -> str:
    (value,) = re.findall(rf"^ARG {name}=(\S+)$", CUDA, flags=re.M)
    return value


def test_torch_build_matches_the_cuda_base():
    """A CUDA 13.0 torch on a CUDA 12.8 base runs on the CPU under a 570-579 driver, holding the GPU."""
    base = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-cudnn-runtime-ubuntu\d+\.\d+", arg("CUDA_BASE"))
    assert base, arg("CUDA_BASE")
    assert arg("TORCH_CUDA") == f"cu{base[1]}{base[2]}"
    assert "download.pytorch.org/whl/${TORCH_CUDA}" in CUDA
    assert "assert torch.version.cuda == base" in CUDA  # the build itself refuses a mismatch


def test_the_driver_it_needs_is_stated():
    # NVIDIA's minimum Linux driver per CUDA release (CUDA toolkit release notes, table 3)
    assert int(arg("MIN_DRIVER")) == {"cu128": 570, "cu130": 580}[arg("TORCH_CUDA")]
    assert "driver >= ${MIN_DRIVER}" in CUDA
