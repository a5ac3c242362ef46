"""MNIST from the official idx files (gzipped or not), checked, and downloaded only when asked.

The directory comes from the caller, else $UMNIST_MNIST_DIR. Files are the official names
(`train-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`, ...). A full run uses both splits
(70,000 digits, as the winning solution did); tests use the 10,000 test digits.
"""

import gzip
import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np

from umnist.errors import UmnistError
from umnist.fileio import atomic_path

MNIST_DIR_ENV = "UMNIST_MNIST_DIR"
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
SPLIT_SIZE = {"train": 60_000, "test": 10_000}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
# The mirror torchvision uses (the original yann.lecun.com host no longer serves the files), with the
# MD5 sums of the official files.
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def mnist_dir(directory: str | os.PathLike | None = None) -> Path:
    """The MNIST directory: the argument, else $UMNIST_MNIST_DIR; a clear error when neither is set."""
    value = directory or os.environ.get(MNIST_DIR_ENV)
    if not value:
        raise UmnistError(f"no MNIST directory: pass --mnist DIR or set {MNIST_DIR_ENV}")
    path = Path(value)
    if not path.is_dir():
        raise UmnistError(f"{path}: MNIST directory not found")
    return path


def _present(directory: Path, stem: str) -> Path | None:
    return next((directory / n for n in (stem, stem + ".gz") if (directory / n).is_file()), None)


def _find(directory: Path, split: str, kind: str) -> Path:
    """The idx file of `split` and `kind` ("images-idx3-ubyte"); missing: an error that names what the user
    can do, including drawing from the other split when its files are here (e.g. MNIST-test only)."""
    stem = f"{SPLIT_PREFIX[split]}-{kind}"
    found = _present(directory, stem)
    if found is None:
        others = [s for s in SPLIT_PREFIX if s != split and _present(directory, f"{SPLIT_PREFIX[s]}-{kind}")]
        instead = "".join(f", or draw only from the split here: --mnist-splits {s}" for s in others)
        raise UmnistError(f"{directory / stem}[.gz]: MNIST file missing (use `umnist mnist --download` to fetch "
                          f"it{instead})")
    return found


def read_idx(path: str | os.PathLike, magic: int, shape_tail: tuple[int, ...]) -> np.ndarray:
    """Read one idx file, checking its magic number, dimensions and length."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise UmnistError(f"{path}: cannot read MNIST file ({exc})") from None
    ndim = len(shape_tail) + 1
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UmnistError(f"{path}: truncated MNIST file ({len(raw)} bytes, header needs {header})")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise UmnistError(f"{path}: wrong magic number {found} (expected {magic}); not an MNIST idx file of this kind")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != shape_tail:
        raise UmnistError(f"{path}: dimensions {dims[1:]} (expected {shape_tail})")
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise UmnistError(f"{path}: truncated or padded MNIST file ({len(raw)} bytes, expected {expected})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(directory: str | os.PathLike | None = None,
               splits: tuple[str, ...] = ("train", "test")) -> tuple[np.ndarray, np.ndarray]:
    """Digits (N, 28, 28) uint8 and labels (N,) uint8 of the given splits, concatenated in that order."""
    root = mnist_dir(directory)
    images, labels = [], []
    for split in splits:
        if split not in SPLIT_PREFIX:
            raise UmnistError(f"unknown MNIST split '{split}' (known: train, test)")
        x = read_idx(_find(root, split, "images-idx3-ubyte"), IMAGES_MAGIC, (28, 28))
        y = read_idx(_find(root, split, "labels-idx1-ubyte"), LABELS_MAGIC, ())
        if len(x) != len(y):
            raise UmnistError(f"{root}: {split} split has {len(x)} images but {len(y)} labels")
        if y.size and y.max() > 9:
            raise UmnistError(f"{root}: {split} labels hold {int(y.max())}, outside 0..9")
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def download_mnist(directory: str | os.PathLike, splits: tuple[str, ...] = ("train", "test")) -> Path:
    """Fetch the official gzipped files into `directory` (skipping those present), verifying MD5 sums."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for split in splits:
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            name = f"{SPLIT_PREFIX[split]}-{kind}.gz"
            target = root / name
            if target.is_file() and _md5(target) == MD5[name]:
                continue
            try:
                with urllib.request.urlopen(MIRROR + name, timeout=60) as resp, atomic_path(target) as tmp:
                    tmp.write_bytes(resp.read())
                    if _md5(tmp) != MD5[name]:
                        raise UmnistError(f"{MIRROR + name}: MD5 mismatch, download corrupt; nothing written")
            except OSError as exc:
                raise UmnistError(f"{MIRROR + name}: download failed ({exc})") from None
    return root


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
