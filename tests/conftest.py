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


@pytest.fixture(scope="session")
def tiny_crops(mnist_dir, tmp_path_factory) -> Path:
    """The `tiny` profile's crop set from the real synth stage (about a second)."""
    from umnist import synth

    return synth.run(tmp_path_factory.mktemp("synth") / "data", "tiny", mnist=mnist_dir, workers=1,
                     progress=False) / "crops"


@pytest.fixture(scope="session")
def tiny_classifier(tiny_crops, tmp_path_factory) -> tuple[Path, dict]:
    """A classifier trained with the whole `tiny` profile (about 20 s on 2 cores): its folder and summary."""
    from umnist.classifier.train import train

    out = tmp_path_factory.mktemp("classifier") / "run"
    return out, train(tiny_crops, out, "tiny")
