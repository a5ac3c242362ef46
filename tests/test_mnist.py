import gzip
import shutil

import numpy as np
import pytest

from umnist.cli import main
from umnist.errors import UmnistError
from umnist.mnist import load_mnist, read_idx


def test_loads_real_test_digits(mnist_dir):
    x, y = load_mnist(mnist_dir, ("test",))
    assert x.shape == (10_000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10_000,)
    assert np.bincount(y, minlength=10).min() > 800  # every class present in the real test set
    assert x.max() == 255 and x.min() == 0


def test_reads_uncompressed_files(mnist_dir, tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(mnist_dir / f"{name}.gz") as src:
            (tmp_path / name).write_bytes(src.read())
    x, y = load_mnist(tmp_path, ("test",))
    x_ref, y_ref = load_mnist(mnist_dir, ("test",))
    assert np.array_equal(x, x_ref) and np.array_equal(y, y_ref)


def test_missing_split_names_the_file_and_the_split_that_is_there(mnist_dir, tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").symlink_to(mnist_dir / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(UmnistError, match=r"train-images-idx3-ubyte\[\.gz\]: MNIST file missing \(use `umnist mnist "
                                          r"--download` to fetch it, or draw only from the split here: "
                                          r"--mnist-splits test\)$"):
        load_mnist(tmp_path, ("train", "test"))
    with pytest.raises(UmnistError, match=r"t10k-labels-idx1-ubyte\[\.gz\]: MNIST file missing \(use `umnist mnist "
                                          r"--download` to fetch it\)$"):
        load_mnist(tmp_path, ("test",))


def test_no_directory_given(monkeypatch):
    monkeypatch.delenv("UMNIST_MNIST_DIR", raising=False)
    with pytest.raises(UmnistError, match="UMNIST_MNIST_DIR"):
        load_mnist(None, ("test",))


@pytest.mark.parametrize("damage, message", [
    (lambda raw: b"\x00\x00\x08\x01" + raw[4:], "wrong magic number 2049"),
    (lambda raw: raw[:-100], "truncated"),
    (lambda raw: raw[:10], "truncated"),
    (lambda raw: raw[:8] + (27).to_bytes(4, "big") + raw[12:], r"dimensions \(27, 28\)"),
])
def test_malformed_images_file(mnist_dir, tmp_path, damage, message):
    raw = gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz").read()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(damage(raw))
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(UmnistError, match=message) as info:
        load_mnist(tmp_path, ("test",))
    assert "t10k-images-idx3-ubyte" in str(info.value)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(UmnistError, match="cannot read MNIST file"):
        read_idx(path, 2051, (28, 28))


def test_cli_reports_counts(mnist_dir, capsys):
    assert main(["mnist", "--mnist", str(mnist_dir), "--splits", "test"]) == 0
    assert "10000 digits 28x28" in capsys.readouterr().out


def test_cli_error_is_one_line(tmp_path, capsys):
    assert main(["mnist", "--mnist", str(tmp_path), "--splits", "test"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing" in err


@pytest.fixture
def mirror(mnist_dir, tmp_path, monkeypatch):
    """A local mirror (file:// URL) holding the real test-split files, standing in for the canonical host."""
    from umnist import mnist

    folder = tmp_path / "mirror"
    folder.mkdir()
    for path in mnist_dir.glob("t10k-*.gz"):
        shutil.copy(path, folder)
    monkeypatch.setattr(mnist, "MIRROR", folder.as_uri() + "/")
    return folder


def test_download_verifies_checksums(mirror, tmp_path):
    from umnist.mnist import download_mnist

    target = download_mnist(tmp_path / "mnist", ("test",))
    x, _ = load_mnist(target, ("test",))
    assert x.shape == (10_000, 28, 28)
    assert sorted(p.name for p in target.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_download_refuses_a_corrupt_file_and_writes_nothing(mirror, tmp_path):
    from umnist.mnist import download_mnist

    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    with pytest.raises(UmnistError, match="MD5 mismatch"):
        download_mnist(tmp_path / "mnist", ("test",))
    assert not (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list((tmp_path / "mnist").glob("*.partial"))
