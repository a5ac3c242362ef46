"""Shared fixtures: the real MNIST test digits in ../shared/data/mnist (never committed to the repo)."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("UMNIST_MNIST_DIR") or REPO.parent / "shared" / "data" / "mnist")


def tiny_config(**sections: dict) -> str:
    """The pipeline's `config` run parameter for the `tiny` profile, with some fields changed per section,
    e.g. tiny_config(synth={"scenes_train": 6})."""
    from umnist import config

    profile = config.resolve_all("tiny")
    for section, fields in sections.items():
        profile[section].update(fields)
    return config.profile_text({"_profile": "tiny (changed in a test)", **profile})


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"the real MNIST test digits are needed in {MNIST_DIR} (or set UMNIST_MNIST_DIR)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real SeaweedFS S3 server on loopback for the whole session (see tests/s3_server.py)."""
    from tests.s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_uri(s3_server, monkeypatch, request) -> str:
    """A fresh `s3://` prefix per test, with the environment pointing umnist.storage at the test server."""
    from tests.s3_server import ACCESS_KEY, BUCKET, SECRET_KEY

    monkeypatch.setenv("UMNIST_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("UMNIST_S3_BACKOFF", "0.2")
    for name in ("AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "UMNIST_S3_SECURE"):
        monkeypatch.delenv(name, raising=False)
    return f"s3://{BUCKET}/{re.sub(r'[^A-Za-z0-9._-]+', '-', request.node.name)}"


@pytest.fixture(scope="session")
def tiny_data(mnist_dir, tmp_path_factory) -> Path:
    """The `tiny` profile's synthetic data set from the real synth stage (about a second)."""
    from umnist import synth

    out = tmp_path_factory.mktemp("synth") / "data"
    synth.run(mnist_dir, out, "tiny", workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_crops(tiny_data) -> Path:
    """The `tiny` profile's crop set."""
    return tiny_data / "crops"


@pytest.fixture(scope="session")
def tiny_classifier(tiny_crops, tmp_path_factory) -> tuple[Path, dict]:
    """A classifier trained with the whole `tiny` profile (about 20 s on 2 cores): its folder and summary."""
    from umnist import classifier

    out = tmp_path_factory.mktemp("classifier") / "run"
    return out, classifier.run(tiny_crops, out, "tiny")


@pytest.fixture(scope="session")
def tiny_detector_data(mnist_dir, tmp_path_factory) -> Path:
    """A small detection set (12 train scenes, 2 of them empty, 4 val; no crops) for detector training."""
    from umnist import synth

    out = tmp_path_factory.mktemp("synth-detector") / "data"
    synth.run(mnist_dir, out, "tiny", workers=2, progress=False, scenes_train=12, empty_train=2, scenes_val=4,
              crops_mnist=False)
    return out


@pytest.fixture(scope="session")
def tiny_detector(tiny_detector_data, tmp_path_factory) -> Path:
    """A finished tiny detector run (2 epochs, the objectness stop switched off): its output folder."""
    from umnist import detector

    out = tmp_path_factory.mktemp("detector") / "run"
    detector.run(tiny_detector_data, out, "tiny", epochs=2, obj_loss_stop=0)
    return out
