"""The GPU lease scripts: the carried wheels agree with pyproject's pins, and the device command needs a GPU.

The whole path (wheels installed with no index, the check's toy run with no network) is rehearsed by hand in a
clean Python 3.12: README "GPU budget".
"""

import os
import re
import subprocess
import sys
import tomllib

import pytest
import torch

from tests.conftest import REPO


def _name(requirement: str) -> str:
    return re.split(r"[=<>;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _carried() -> dict[str, str]:
    lines = (REPO / "bench" / "gpu_lease_wheels.txt").read_text().splitlines()
    requirements = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.]*", r) for r in requirements), requirements
    pins = {_name(r): r.split("==")[1] for r in requirements}
    assert len(pins) == len(requirements), "one version of each wheel: two stop the whole install"
    return pins


def test_carried_wheels_are_pinned_as_in_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {_name(r): r.split("==")[1] for r in project}
    carried = _carried()
    assert {"yolov5", "albumentations", "setuptools"} <= carried.keys()
    assert {name: carried[name] for name in carried.keys() & pinned.keys()} == {
        name: pinned[name] for name in carried.keys() & pinned.keys()}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_the_device_command_refuses_to_run_without_a_gpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu_lease.sh")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    assert "cannot compute on a CUDA GPU here (--rehearsal runs without)" in done.stdout
    assert "torch cannot compute" in (tmp_path / "lease.log").read_text()
    assert not (tmp_path / "gpu_check.json").exists()  # refused before installing or running anything
