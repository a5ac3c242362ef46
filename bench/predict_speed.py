"""Usage: python bench/predict_speed.py --detector D --classifier C [--images 10 100] [--size 4000]

Seconds per image of the whole `umnist predict` on competition-sized images (4000x4000 grayscale JPEGs in
the `competition` synth style), split into decode, detect, crop + classify and post-process, next to the
floor (decode + detector forward only, nothing else), and the peak memory (RSS) of runs over 10 and 100
images, each in a fresh process. Weights: any detector/classifier pair, e.g. from `make demo`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
from pathlib import Path
from umnist import infer, postprocess
images, detector, classifier, out, profile = sys.argv[1:6]
start = time.perf_counter()
stats = infer.run(images, detector, classifier, out, profile, progress=False)["speed"]
middle = time.perf_counter()
postprocess.run(out, out, profile)
end = time.perf_counter()
import resource
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({**stats, "infer_seconds": middle - start, "postprocess_seconds": end - middle, "peak_mib": peak}))
"""

FLOOR = """
import sys, time, cv2
from pathlib import Path
from umnist.detector import Detector
images, detector, profile = sys.argv[1:4]
model = Detector.from_profile(detector, profile)
paths = sorted(Path(images).glob("*.jpg"))
model.detect([cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE)])
start = time.perf_counter()
for path in paths:
    model.detect([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)])
print((time.perf_counter() - start) / len(paths))
"""


def child(code: str, *args: str) -> str:
    """Run `code` in a fresh Python (its own peak memory); return its last output line."""
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", required=True)
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--images", type=int, nargs="+", default=[10, 100], help="image counts to run")
    parser.add_argument("--size", type=int, default=4000, help="image side (the competition's 4000)")
    parser.add_argument("--profile", default="full", help="profile for the detect size and thresholds")
    parser.add_argument("--mnist", default=str(REPO.parent / "shared" / "data" / "mnist"))
    args = parser.parse_args()
    from umnist import synth

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        synth.run(args.mnist, data, "full", progress=False, mode="competition", scene_size=args.size,
                  scenes_train=max(args.images), empty_train=0, scenes_val=0, mnist_splits=["test"], crop_size=0,
                  seed=7)
        all_images = sorted((data / "detection" / "images" / "train").glob("*.jpg"))
        floor_dir = Path(tmp) / "floor"
        floor_dir.mkdir()
        for path in all_images[:min(args.images)]:
            (floor_dir / path.name).symlink_to(path)
        floor = child(FLOOR, str(floor_dir), args.detector, args.profile)
        print(f"floor (decode + detector forward): {float(floor):.3f} s/image")
        for count in args.images:
            subset = Path(tmp) / f"images{count}"
            subset.mkdir()
            for path in all_images[:count]:
                (subset / path.name).symlink_to(path)
            start = time.perf_counter()
            line = child(CHILD, str(subset), args.detector, args.classifier, str(Path(tmp) / f"out{count}"),
                               args.profile)
            stats = json.loads(line)
            per = {k: stats[k] / count for k in ("seconds", "detect_seconds", "crop_classify_seconds",
                                                   "decode_seconds_in_threads", "postprocess_seconds")}
            print(f"{count} images: predict {per['seconds'] + per['postprocess_seconds']:.3f} s/image "
                  f"(decode {per['decode_seconds_in_threads']:.3f} in threads, detect {per['detect_seconds']:.3f}, "
                  f"crop+classify {per['crop_classify_seconds']:.3f}, postprocess {per['postprocess_seconds']:.4f}); "
                  f"ratio to floor {(per['seconds'] + per['postprocess_seconds']) / float(floor):.2f}; "
                  f"peak RSS {stats['peak_mib']:.0f} MiB; wall {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
