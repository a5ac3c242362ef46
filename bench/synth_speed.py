"""Usage: python bench/synth_speed.py [--mnist DIR] [--scenes N] [--sizes 2560 256] [--workers 1 2]

Scenes per second of the synth stage, writing the JPEG and label files (and crops) included, at each scene
size and worker count. Runs the real `umnist.synth.run` into a temporary directory.
"""

import argparse
import tempfile
import time
from pathlib import Path

from umnist import synth

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--scenes", type=int, default=200, help="scenes per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2560, 256])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--mode", default="solution", choices=["solution", "competition"])
    args = parser.parse_args()
    print(f"{'size':>6} {'workers':>7} {'scenes':>6} {'seconds':>8} {'scenes/s':>9} {'per worker':>10}")
    for size in args.sizes:
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                synth.run(args.mnist, Path(tmp) / "data", "full", workers=workers, progress=False,
                          mode=args.mode, scene_size=size, scenes_train=args.scenes, empty_train=args.scenes // 10,
                          scenes_val=0, mnist_splits=["test"], crops_mnist=False)
                seconds = time.perf_counter() - start
            rate = args.scenes / seconds
            print(f"{size:>6} {workers:>7} {args.scenes:>6} {seconds:>8.2f} {rate:>9.1f} {rate / workers:>10.1f}")


if __name__ == "__main__":
    main()
