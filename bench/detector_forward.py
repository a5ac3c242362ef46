"""Usage: python bench/detector_forward.py [--img-size 2560] [--images 3] [--batch 1] [--devices cpu cuda]

Seconds per image of the detector at full size, on each available device: the network's forward pass alone,
and the whole `Detector.detect` call on 4000x4000 grey uint8 images (the competition's size: letterbox to
img_size, forward, NMS, boxes back to original pixels). YOLOv5s with untrained weights (speed does not depend
on them) is built from its YAML and saved to a temporary checkpoint; nothing is downloaded.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from umnist import yolo_compat
from umnist.detector import Detector


def untrained_checkpoint(model: str, folder: Path) -> Path:
    train = yolo_compat.yolov5_train()
    from yolov5.models.yolo import Model

    net = Model(str(Path(train.__file__).parent / "models" / f"{model}.yaml"), nc=10)
    path = folder / f"{model}.pt"
    torch.save({"model": net.half(), "epoch": -1, "optimizer": None}, path)
    return path


def measure(weights: Path, device: str, args) -> dict:
    detector = Detector(weights, img_size=args.img_size, device=device)
    images = [np.random.default_rng(i).integers(0, 2, (4000, 4000), dtype=np.uint8) * 255
              for i in range(args.batch)]
    detector.detect(images, batch_size=args.batch)  # warm-up (allocations, cudnn autotuning)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    x = torch.zeros(args.batch, 3, args.img_size, args.img_size, device=detector.device)
    x = x.half() if detector.half else x
    forward, whole = [], []
    for _ in range(args.images):
        sync()
        start = time.perf_counter()
        with torch.inference_mode():
            detector.model(x)
        sync()
        forward.append(time.perf_counter() - start)
        start = time.perf_counter()
        detector.detect(images, batch_size=args.batch)
        sync()
        whole.append(time.perf_counter() - start)
    return {"forward_s": float(np.median(forward)) / args.batch, "detect_s": float(np.median(whole)) / args.batch,
            "threads": torch.get_num_threads(), "half": detector.half}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov5s")
    parser.add_argument("--img-size", type=int, default=2560)
    parser.add_argument("--images", type=int, default=3, help="timed repetitions (median reported)")
    parser.add_argument("--batch", type=int, default=1, help="images per forward pass")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = untrained_checkpoint(args.model, Path(tmp))
        print(f"{args.model} at {args.img_size}, batch {args.batch}, 4000x4000 grey input")
        print(f"{'device':>8} {'half':>5} {'threads':>7} {'forward s/img':>14} {'detect s/img':>13} {'img/s':>7}")
        for device in args.devices:
            if device == "cuda" and not torch.cuda.is_available():
                print(f"{device:>8}  (not available)")
                continue
            r = measure(weights, device, args)
            print(f"{device:>8} {r['half']!s:>5} {r['threads']:>7} {r['forward_s']:>14.3f} {r['detect_s']:>13.3f} "
                  f"{1 / r['detect_s']:>7.2f}")


if __name__ == "__main__":
    main()
