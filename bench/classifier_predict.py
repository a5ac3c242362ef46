"""Usage: python bench/classifier_predict.py [--mnist DIR] [--crops N] [--batch 64 256] [--weights best.pt]

Crops per second of `umnist.classifier.inference` with the invert TTA (two network passes per crop), resizing
included: real MNIST digits upscaled to square crops of 28..400 px, as the detector would cut them. Without
--weights it measures a freshly initialised network of --arch/--img-size (speed does not depend on weights).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from umnist.classifier.inference import predict
from umnist.classifier.model import DigitNet, load_classifier
from umnist.mnist import load_mnist

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--crops", type=int, default=512, help="crops per measurement")
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--weights", help="a trained best.pt (default: fresh --arch at --img-size)")
    parser.add_argument("--arch", default="tf_efficientnetv2_b1")
    parser.add_argument("--img-size", type=int, default=128)
    args = parser.parse_args()

    model = load_classifier(args.weights) if args.weights else DigitNet(args.arch, args.img_size).eval()
    digits, _ = load_mnist(args.mnist, ("test",))
    sizes = np.random.default_rng(0).integers(28, 401, args.crops)
    crops = [np.kron(d, np.ones((s // 28, s // 28), np.uint8)) for d, s in zip(digits, sizes, strict=False)]
    device = next(model.parameters()).device
    print(f"{model.arch} at {model.img_size} px on {device} ({torch.get_num_threads()} threads), "
          f"{len(crops)} crops of 28..400 px, invert TTA")
    print(f"{'batch':>6} {'seconds':>8} {'crops/s':>8}")
    predict(model, crops[:8])  # warm-up: first-call allocations and kernel selection
    for batch in args.batch:
        start = time.perf_counter()
        predict(model, crops, batch_size=batch)
        seconds = time.perf_counter() - start
        print(f"{batch:>6} {seconds:>8.2f} {len(crops) / seconds:>8.1f}")


if __name__ == "__main__":
    main()
