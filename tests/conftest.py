"""Shared fixtures: the real MNIST test digits in ../shared/data/mnist (never committed to the repo)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("UMNIST_MNIST_DIR") or REPO.parent / "shared" / "data" / "mnist")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"the real MNIST test digits are needed in {MNIST_DIR} (or set UMNIST_MNIST_DIR)")
    return MNIST_DIR
