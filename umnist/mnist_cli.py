"""`umnist mnist`: check (and, only when asked, download) the MNIST idx files."""

import numpy as np

from umnist.mnist import download_mnist, load_mnist


def register(sub) -> None:
    p = sub.add_parser("mnist", help="check the MNIST files; --download fetches them (with checksums)")
    p.add_argument("--mnist", help="directory of the idx files (default: $UMNIST_MNIST_DIR)")
    p.add_argument("--splits", nargs="+", default=["train", "test"], choices=["train", "test"])
    p.add_argument("--download", action="store_true", help="fetch missing files from the canonical mirror")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    if args.download:
        download_mnist(args.mnist or "data/mnist", tuple(args.splits))
    images, labels = load_mnist(args.mnist or ("data/mnist" if args.download else None), tuple(args.splits))
    counts = np.bincount(labels, minlength=10)
    print(f"{len(images)} digits {images.shape[1]}x{images.shape[2]}; per class: {counts.tolist()}")
    return 0
